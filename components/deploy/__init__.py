"""Deployment: the `deploy` component and its rollouts (local process, KServe InferenceService, Vertex endpoint).

Modules: `ops` (the component), `target` (per-target logic), `inference_service` (manifest),
`crd` (strict CRD validation), `kserve_rollout` (its cluster calls and status in `isvc_api`),
`vertex_endpoint`, `triton` (ONNX + Triton repository), `smoke`, `champion`, `autoscaling`, `checks`,
`fetch`. See docs/deploy.md.
"""

__all__: list[str] = []
