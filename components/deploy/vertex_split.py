"""A Vertex endpoint's deployed models as a kubepipe rollout sees them: which are kubepipe's (of this model), the
traffic split it found before its canary, and the settling of a rollout a killed deploy step left unfinished.

Intent before action (decision 0009): the candidate's Model resource is uploaded with the split that served before
its canary, as labels (`kubepipe-rollout: canary`, `kubepipe-before-<deployedModelId>: <percent>`), before it gets
any traffic; the promotion clears them once the champion moved and the old models are gone. A deployed model still
carrying them is an interrupted rollout's candidate: the next deploy settles it first, as `kubepipe endpoints repair`
does locally. Committed when the registry's champion is the candidate's version (with no registry: when its old
models take no traffic any more): it takes kubepipe's share and the old models are undeployed; else rolled back: the recorded split is restored and
the candidate undeployed. Deployed models of other models or owners ("foreign": their Model does not carry this
model's kubepipe labels, or cannot be read) keep their traffic and stay deployed.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubepipe.components.errors import ComponentError
from kubepipe.labels import MANAGED_BY, gcp_label

__all__ = ["Deployed", "deployed_models", "record_labels", "settle_interrupted", "settled_labels", "promoted_split",
           "delete_rolled_back"]

RECORD = "kubepipe-rollout"  # on a candidate Model: its rollout is not settled
BEFORE = "kubepipe-before-"  # + a deployed model id: that model's share of the traffic before the canary


@dataclass(frozen=True)
class Deployed:
    id: str
    model: str  # its Model resource name
    display_name: str
    labels: dict | None  # its Model's labels; None: unreadable (another project, deleted): not kubepipe's

    def ours(self, name: str) -> bool:
        labels = self.labels or {}
        return labels.get(MANAGED_BY) == "kubepipe" and labels.get("kubepipe-model") == gcp_label(name)

    def recorded(self) -> dict[str, int] | None:
        """The split its rollout found before the canary, while that rollout is unsettled; else None."""
        if not self.labels or RECORD not in self.labels:
            return None
        return {k[len(BEFORE):]: int(v) for k, v in self.labels.items() if k.startswith(BEFORE) and v.isdigit()}


def record_labels(split: dict[str, int]) -> dict[str, str]:
    return {RECORD: "canary", **{f"{BEFORE}{gcp_label(k)}": str(int(v)) for k, v in split.items()}}


def settled_labels(labels: dict) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != RECORD and not k.startswith(BEFORE)}


def deployed_models(endpoint, where: dict) -> list[Deployed]:
    from google.api_core import exceptions as gexc
    from google.cloud import aiplatform

    out = []
    for m in endpoint.list_models():
        try:
            labels = dict(aiplatform.Model(m.model, credentials=where.get("credentials")).labels or {})
        except (gexc.GoogleAPICallError, ValueError):  # not readable here: not one kubepipe deployed
            labels = None
        out.append(Deployed(id=str(m.id), model=str(m.model), display_name=str(m.display_name), labels=labels))
    return out


def delete_rolled_back(model: str, where: dict) -> str:
    """Delete a rolled-back candidate's Model resource, uploaded for this deploy (it never served as champion; its files
    stay in the registry and a later deploy uploads them again): '' once gone, else why it was left. Vertex refuses to
    delete a Model deployed anywhere, so one deployed elsewhere by hand stays."""
    from google.api_core import exceptions as gexc
    from google.cloud import aiplatform

    try:
        aiplatform.Model(model, credentials=where.get("credentials")).delete()
    except gexc.NotFound:
        return ""
    except (gexc.GoogleAPICallError, ValueError) as exc:
        text = " ".join(str(getattr(exc, "message", exc)).split())[:200]
        return (f"the rolled-back Model {model} could not be deleted ({type(exc).__name__}: {text}); it serves nothing "
                f"here: `gcloud ai models delete {model.rsplit('/', 1)[-1]}` once it is deployed nowhere")
    return ""


def promoted_split(new_id: str, before: dict[str, int], foreign: list[Deployed]) -> dict[str, int]:
    """The new model takes the share kubepipe's models had before the canary; foreign models keep theirs."""
    kept = {d.id: before[d.id] for d in foreign if before.get(d.id)}
    return {new_id: 100 - sum(kept.values()), **kept} if before else {new_id: 100}


def _restorable(split: dict[str, int], present: set[str]) -> dict[str, int]:
    """`split` over the deployed models still there, summing to 100 (largest remainders), or {} when none is."""
    kept = {k: v for k, v in split.items() if k in present and v > 0}
    total = sum(kept.values())
    if not total or total == 100:
        return kept
    exact = {k: v * 100 / total for k, v in kept.items()}
    out = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)[:100 - sum(out.values())]:
        out[k] += 1
    return out


def settle_interrupted(endpoint, name: str, champion, where: dict, *, registry: bool) -> list[str]:
    """Settle the rollouts a killed deploy left on `endpoint` (see the module's doc); what was done, one line each."""
    from google.cloud import aiplatform

    notes: list[str] = []
    for _ in range(3):  # one at a time; a rollout settles the one before it first, so there is at most one
        deployed = deployed_models(endpoint, where)
        found = [d for d in deployed if d.ours(name) and d.recorded() is not None]
        if not found:
            return notes
        cand = found[0]
        before = cand.recorded() or {}
        split = {str(k): int(v) for k, v in (endpoint.traffic_split or {}).items()}
        present = {d.id for d in deployed}
        old_ours = [d for d in deployed if d.ours(name) and d.id in before and d.id != cand.id]
        version = (cand.labels or {}).get("kubepipe-version")
        committed = (champion not in (None, "") and version == gcp_label(champion)) if registry else (
            split.get(cand.id, 0) > 0 and not any(split.get(d.id, 0) for d in old_ours))
        try:
            if committed:  # the champion is its version: finish its promotion (a champion moved by hand mid-canary too)
                if any(split.get(d.id) for d in old_ours):
                    others = {d.id: split[d.id] for d in deployed if not d.ours(name) and split.get(d.id)}
                    endpoint.update(traffic_split={cand.id: 100 - sum(others.values()), **others})
                for d in old_ours:
                    endpoint.undeploy(d.id)
                aiplatform.Model(cand.model, credentials=where.get("credentials")).update(
                    labels=settled_labels(cand.labels or {}))
                notes.append(f"an interrupted rollout's deployed model {cand.id} ({cand.display_name}) is the "
                             f"champion's version: its promotion was finished, its old models "
                             f"{[d.id for d in old_ours] or 'none'} undeployed")
            else:  # not committed: what served before it serves again
                restore = _restorable(before, present - {cand.id})
                if restore:
                    endpoint.update(traffic_split=restore)
                endpoint.undeploy(cand.id)
                left = delete_rolled_back(cand.model, where)
                notes.append(f"an interrupted rollout's deployed model {cand.id} ({cand.display_name}) was rolled "
                             f"back: traffic restored to {restore or 'nothing'} and it was undeployed"
                             + (f"; {left}" if left else f", its Model {cand.model} deleted"))
        except ValueError as exc:  # aiplatform's own check of a split (one that would leave no traffic)
            raise ComponentError(
                f"model_name: the Vertex endpoint {endpoint.resource_name} holds deployed model {cand.id} "
                f"({cand.display_name}) of a deploy that was killed, and settling it failed: {exc}; see `gcloud ai "
                f"endpoints describe {endpoint.name}`, give the traffic to the models that should serve and undeploy "
                f"{cand.id} by hand, then run the deploy again") from None
        endpoint = aiplatform.Endpoint(endpoint.resource_name, **where)
    return notes
