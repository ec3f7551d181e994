"""The judged record of a KServe rollout with nothing else to settle it by (no registry, no canary split: its
InferenceService says `kubepipe.dev/lease-holds: until-lapsed`), kept beside the InferenceService, not on it.

Any write to the InferenceService would roll out one more revision (KServe copies its annotations onto the pod
template), so once such a rollout was judged (its smoke test passed) the deploy writes the fence it judged, the
(run id, lease-until) pair `isvc_record.lease_of` reads off the InferenceService, to a `coordination.k8s.io/v1`
Lease of its own, `kubepipe-judged-<InferenceService name>` in its namespace (owned by the InferenceService, so
deleted with it). A deploy that finds that same pair on the InferenceService takes the rollout as settled and goes on
at once. The record is written after the judgement, with the resourceVersion read (create exclusively, else replace
the version read; a 409 is read again): a deploy killed before it leaves the lease holding until it lapses, and a
record of an older rollout names another pair, so it never releases a newer one. A Lease, not a ConfigMap: it is the
API's object for coordination records, small, and its RBAC is apart from ConfigMaps' (which hold configuration other
pods read). No rights on leases (a Role from before this record) or another failed call is a warning, and the lease
holds until it lapses, as before (decision 0021).
"""

from __future__ import annotations

import sys

from kubepipe.components.deploy.isvc_api import GROUP, VERSION
from kubepipe.components.deploy.isvc_record import JUDGED_PREFIX, LEASE_KEY, RUN_KEY, holds_until_lapsed, lease_of

__all__ = ["RBAC_VERBS", "RBAC_RULE", "JudgedRecord"]

RBAC_VERBS = ("get", "create", "update")  # what the deploy calls on leases, and all its Role grants (terraform)
RBAC_RULE = ('apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ['
             + ", ".join(f'"{verb}"' for verb in RBAC_VERBS) + "]")


class JudgedRecord:
    """The Lease `kubepipe-judged-NAME` in `namespace`: read the pair it names (`read_for`), write one (`write`);
    what went wrong is a warning (`warnings`, also said on stderr), never the deploy's error."""

    def __init__(self, api_client, namespace: str, isvc_name: str):
        from kubernetes import client

        self.client, self.api = api_client, client.CoordinationV1Api(api_client)
        self.ns, self.isvc_name, self.name = namespace, isvc_name, f"{JUDGED_PREFIX}{isvc_name}"
        self.warnings: list[str] = []

    def read_for(self, existing: dict | None, now: float) -> tuple[str, str | None] | None:
        """The (run, lease-until) the record names, when `existing` holds its lease until it lapses (else no read:
        nothing else asks for it, and a cluster without the rule is not warned at every deploy); None: no record, or
        it could not be read (warned)."""
        if not holds_until_lapsed(existing, now):
            return None
        found = self._call("get", lambda: self.api.read_namespaced_lease(self.name, self.ns), lease_of(existing))
        return lease_of(found) if found else None

    def write(self, holder: tuple[str, str | None], isvc: dict, version) -> bool:
        """Record that the rollout holding `holder` was judged; True once written. `isvc`: the InferenceService read
        just before, which owns the record."""
        meta = isvc["metadata"]
        body: dict = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.ns,
                             "labels": {"app.kubernetes.io/managed-by": "kubepipe",
                                        "kubepipe.dev/inference-service": self.isvc_name},
                             "annotations": {RUN_KEY: holder[0], LEASE_KEY: holder[1],
                                             "kubepipe.dev/model-version": str(version)},
                             "ownerReferences": [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "InferenceService",
                                                  "name": meta["name"], "uid": meta["uid"]}]},
                "spec": {"holderIdentity": holder[0]}}
        for _ in range(3):  # a 409: another writer between this read and write; read again
            current = self._call("get", lambda: self.api.read_namespaced_lease(self.name, self.ns), holder)
            if current is False:
                return False
            if current is None:
                verb, call = "create", lambda: self.api.create_namespaced_lease(self.ns, body)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                verb, call = "update", lambda: self.api.replace_namespaced_lease(self.name, self.ns, body)
            done = self._call(verb, call, holder, conflict=True)
            if done is not None:
                return bool(done)
        self._warn("update", "409 Conflict three times: other writers kept changing it", holder)
        return False

    def _call(self, verb: str, fn, holder, *, conflict: bool = False):
        """The object as a dict; None: 404 (or, with `conflict`, a 409 to read again); False: refused (warned)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.client.sanitize_for_serialization(fn())
        except ApiException as exc:
            if exc.status == 404 or (conflict and exc.status == 409):
                return None
            why = f"{exc.status} {exc.reason}"
        except Exception as exc:  # noqa: BLE001 - unreachable, a timeout: the record fails no deploy, it holds instead
            why = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        self._warn(verb, why, holder)
        return False

    def _warn(self, verb: str, why: str, holder) -> None:
        text = (f"kubernetes {verb} leases/{self.name} in {self.ns} was refused ({why}): the judged record of "
                f"inferenceservices/{self.isvc_name} (a rollout with no registry and no canary split) cannot be "
                f"{'read' if verb == 'get' else 'written'}, so "
                f"the lease of run {holder[0] or '(no run id)'} holds until it lapses ({holder[1]}) and another run's "
                "deploy is refused until then")
        if why.startswith("403"):
            text += (f"; grant the pipeline's service account this rule in a Role of namespace {self.ns}: "
                     f"{RBAC_RULE} (terraform/modules/gke-kubeflow has it)")
        self.warnings.append(text)
        print(f"warning: {text}", file=sys.stderr, flush=True)
