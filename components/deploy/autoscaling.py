"""Autoscaling as users declare it in YAML, and how it lowers into KServe.

```yaml
with:
  autoscaling: {min_replicas: 1, max_replicas: 8, metric: rps, target: 200}
```

Serverless (Knative) mode scales on `concurrency`, `rps`, `cpu` or `memory`;
cpu/memory need Knative's HPA class, which `annotations()` selects.
RawDeployment mode uses a Kubernetes HPA, which scales on `cpu` or `memory`
only (KServe needs KEDA for request metrics), so those are rejected there.
Pure Python: the compile-time check imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubepipe.components.checks import CheckIssue, did_you_mean, issues_text
from kubepipe.components.errors import ComponentError

__all__ = [
    "AUTOSCALING_KEYS",
    "DEPLOYMENT_MODES",
    "METRICS",
    "Autoscaling",
    "autoscaling_issues",
    "parse_autoscaling",
]

AUTOSCALING_KEYS = ("min_replicas", "max_replicas", "metric", "target")
METRICS = ("concurrency", "rps", "cpu", "memory")
# kubepipe's name -> KServe's `serving.kserve.io/deploymentMode` annotation value.
DEPLOYMENT_MODES = {"serverless": "Serverless", "raw": "RawDeployment"}
_RAW_METRICS = ("cpu", "memory")
_DEFAULT_TARGET = {"concurrency": 10, "rps": 100, "cpu": 80, "memory": 80}


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int = 1
    max_replicas: int = 1
    metric: str | None = None
    target: int | None = None

    def predictor_fields(self) -> dict:
        """Keyword arguments for kserve's V1beta1PredictorSpec."""
        out: dict = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas}
        if self.metric:
            out["scale_metric"] = self.metric
            out["scale_target"] = self.target or _DEFAULT_TARGET[self.metric]
        return out

    def annotations(self, deployment_mode: str) -> dict[str, str]:
        """Autoscaler-class annotations KServe / Knative read for this metric and mode."""
        if deployment_mode == "raw":
            return {"serving.kserve.io/autoscalerClass": "hpa"}
        if self.metric in _RAW_METRICS:  # Knative's KPA cannot scale on resources
            return {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}
        return {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"}


def autoscaling_issues(value, deployment_mode: str | None = None, base: tuple = ("autoscaling",)) -> list[CheckIssue]:
    """Everything wrong with a YAML `autoscaling:` block (empty list when fine)."""
    if value in (None, {}):
        return []
    if not isinstance(value, dict):
        return [CheckIssue(base, f"must be a mapping, got {type(value).__name__}",
                           "write e.g. {min_replicas: 1, max_replicas: 4, metric: rps, target: 100}")]
    issues: list[CheckIssue] = []
    for key in value:
        if key not in AUTOSCALING_KEYS:
            hint = did_you_mean(key, AUTOSCALING_KEYS) or f"known keys: {', '.join(AUTOSCALING_KEYS)}"
            issues.append(CheckIssue(base + (key,), f"unknown autoscaling key `{key}`", hint))
    for key in ("min_replicas", "max_replicas", "target"):
        v = value.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (1 if key == "target" else 0)):
            least = 1 if key == "target" else 0
            issues.append(CheckIssue(base + (key,), f"must be an integer >= {least}, got {v!r}", None))
    lo, hi = value.get("min_replicas"), value.get("max_replicas")
    if isinstance(lo, int) and isinstance(hi, int) and hi < lo:
        issues.append(CheckIssue(base + ("max_replicas",), f"max_replicas ({hi}) is below min_replicas ({lo})", None))
    if isinstance(hi, int) and not isinstance(hi, bool) and hi == 0:
        issues.append(CheckIssue(base + ("max_replicas",), "max_replicas must be at least 1", None))
    metric = value.get("metric")
    if metric is not None and metric not in METRICS:
        issues.append(CheckIssue(base + ("metric",), f"unknown scale metric `{metric}`",
                                 did_you_mean(metric, METRICS) or f"use one of: {', '.join(METRICS)}"))
    if value.get("target") is not None and metric is None:
        issues.append(CheckIssue(base + ("target",), "a target needs a `metric`", "add e.g. metric: rps"))
    if deployment_mode == "raw":
        if metric in ("rps", "concurrency"):
            issues.append(CheckIssue(base + ("metric",),
                                     f"RawDeployment mode scales with a Kubernetes HPA on cpu or memory only, not `{metric}`",
                                     "use metric: cpu, or deployment_mode: serverless for request-based scaling"))
        if lo == 0:
            issues.append(CheckIssue(base + ("min_replicas",), "RawDeployment mode cannot scale to zero",
                                     "use min_replicas: 1, or deployment_mode: serverless"))
    return issues


def parse_autoscaling(value, deployment_mode: str = "serverless") -> Autoscaling:
    """The validated Autoscaling, or ComponentError naming each bad `autoscaling.*` field."""
    if deployment_mode not in DEPLOYMENT_MODES:
        raise ComponentError(f"deployment_mode: unknown mode {deployment_mode!r}; use one of {sorted(DEPLOYMENT_MODES)}")
    issues = autoscaling_issues(value, deployment_mode)
    if issues:
        raise ComponentError(issues_text("", issues))  # the caller's step names it
    value = value or {}
    lo = value.get("min_replicas", 1)
    hi = value.get("max_replicas", max(lo, 1))
    return Autoscaling(min_replicas=lo, max_replicas=hi, metric=value.get("metric"), target=value.get("target"))
