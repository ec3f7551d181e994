"""What an InferenceService says of the rollout that last changed it: the spec that served before its canary (the
intent, `kubepipe.dev/rollout-previous`), the run that holds it and until when (the lease), and the settling of a
rollout a killed deploy step left.

The lease rides on the canary's own write, not on a write of its own: KServe copies an InferenceService's annotations
onto the Knative revision template, so taking or releasing a lease by itself would roll out one more revision of the
model serving now (new pods, on GPUs a second set). The canary spec already names its run (`kubepipe.dev/run-id`) and
carries `kubepipe.dev/lease-until` (UTC); the write goes with the resourceVersion read before it, so of two deploys
only one gets it (409 for the other, which reads again and finds the lease). The lease is held while that rollout is
unsettled (decision 0016's rule: a canary split, or a champion that is not the version served) and its time has not
lapsed; the same run (a KFP retry of the step) takes it back at once, any run takes it over once it lapsed. A write
after the canary's checks first that the object still names this rollout's lease (fencing a deploy that outlived it).
A rollout with no canary split and no registry (a first deployment, RawDeployment mode, no canary_percent) leaves
nothing on it to say it was judged, so its write says its lease holds until it lapses (`HOLDS_KEY`), unless the judged
record beside it (`judged_record`: a Lease) names the same (run, lease-until) pair, `judged` here. Lease times are the
API server's (`Isvc.now`: its Date header), not the pods' wall clocks, which may disagree.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime, timezone

from kubepipe.components.deploy.champion import ANY
from kubepipe.components.deploy.isvc_api import Isvc, RolloutError, wait_ready
from kubepipe.times import UTC_FORMAT

__all__ = ["LeaseLost", "with_spec", "PREVIOUS_KEY", "RUN_KEY", "LEASE_KEY", "HOLDS_KEY", "UNTIL_LAPSED", "JUDGED_PREFIX", "record", "unsettled", "holds_until_lapsed", "judged_by", "served_before", "lease_of", "check_lease",
           "lease_until", "restore", "fence", "fenced_patch", "settle", "mode"]

_MODE_KEY = "serving.kserve.io/deploymentMode"
_VERSION_KEY = "kubepipe.dev/model-version"
PREVIOUS_KEY = "kubepipe.dev/rollout-previous"  # intent: what served before this rollout's canary (JSON)
RUN_KEY = "kubepipe.dev/run-id"  # the run whose rollout wrote the spec (inference_service.py)
LEASE_KEY = "kubepipe.dev/lease-until"  # until when that run holds the InferenceService while it is unsettled
# a rollout with nothing else to settle it by (no canary split to remove, no registry champion to move): its lease
# holds until it lapses, unless the judged record beside it names its lease (judged_record)
HOLDS_KEY, UNTIL_LAPSED = "kubepipe.dev/lease-holds", "until-lapsed"
JUDGED_PREFIX = "kubepipe-judged-"  # + the InferenceService's name: the Lease beside it that says it was judged
LEASE_SLACK_S = 300  # past the rollout's own bounds (timeout_s, the bake): the promotion's and rollback's waits


class LeaseLost(RolloutError):
    """Another run took the InferenceService over after this rollout's lease lapsed: this one writes nothing more."""


def _annotations(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def with_spec(existing: dict, manifest: dict) -> dict:
    """`existing` with the manifest's labels/annotations/spec, keeping resourceVersion for the PUT."""
    body = copy.deepcopy(existing)
    body.pop("status", None)
    for key in ("labels", "annotations"):
        body["metadata"][key] = copy.deepcopy((manifest.get("metadata") or {}).get(key) or {})
    body["spec"] = copy.deepcopy(manifest["spec"])
    return body


def mode(obj: dict) -> str:
    return "raw" if _annotations(obj).get(_MODE_KEY) in ("RawDeployment", "Standard") else "serverless"


def lease_until(duration_s: float, now: float | None = None) -> str:
    """The annotation's value: UTC, to the second; `now` the API server's time (`Isvc.now`)."""
    at = datetime.fromtimestamp((time.time() if now is None else now) + duration_s, tz=timezone.utc)
    return at.strftime(UTC_FORMAT)


def _lapsed(until: str | None, now: float) -> bool:
    """An unreadable or absent time (an older kubepipe wrote no lease) counts as lapsed: the rollout is taken over."""
    try:
        return datetime.strptime(str(until), UTC_FORMAT).replace(tzinfo=timezone.utc).timestamp() <= now
    except ValueError:
        return True


def lease_of(obj: dict | None) -> tuple[str, str | None]:
    """(run id, lease-until) the object's spec was written with; the fence a later write checks."""
    notes = _annotations(obj)
    return str(notes.get(RUN_KEY) or ""), notes.get(LEASE_KEY)


def record(previous: dict | None) -> str:
    """The intent's value: the labels, annotations and spec that served before this rollout (null: none did)."""
    if previous is None:
        return "null"
    meta = previous.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != PREVIOUS_KEY}  # a settled one's
    return json.dumps({"labels": meta.get("labels") or {}, "annotations": annotations,
                       "spec": previous["spec"]}, sort_keys=True, separators=(",", ":"))


def holds_until_lapsed(existing: dict | None, now: float | None = None) -> bool:
    """The object holds a rollout written with nothing to settle it by (`HOLDS_KEY`) whose lease has not lapsed at
    `now` (the API server's time; else this machine's): only its judged record can settle it before then."""
    notes = _annotations(existing)
    return (existing is not None and PREVIOUS_KEY in notes and notes.get(HOLDS_KEY) == UNTIL_LAPSED
            and not _lapsed(notes.get(LEASE_KEY), _now(now)))


def judged_by(existing: dict | None, judged: tuple[str, str | None] | None) -> bool:
    """`judged` (the pair a judged record names) is the lease the object's rollout was written with."""
    return existing is not None and judged is not None and judged[1] is not None and tuple(judged) == lease_of(existing)


def unsettled(existing: dict | None, champion, now: float | None = None,
              judged: tuple[str, str | None] | None = None) -> bool:
    """The object holds a rollout nothing settled: its canary split is on, or the champion is not the version it
    serves (`champion` ANY: no registry, the promotion's patch settled it), or it was written with neither
    (`HOLDS_KEY`), its lease has not lapsed at `now` and its judged record (`judged`, the pair it names) is not of
    this rollout."""
    notes = _annotations(existing)
    if existing is None or PREVIOUS_KEY not in notes:
        return False
    if holds_until_lapsed(existing, now):
        return not judged_by(existing, judged)
    canary = existing["spec"].get("predictor", {}).get("canaryTrafficPercent")
    return not (canary is None and (champion is ANY or str(champion) == notes.get(_VERSION_KEY)))


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def served_before(existing: dict | None, champion, now: float | None = None,
                  judged: tuple[str, str | None] | None = None) -> dict | None:
    """What served before this rollout: `existing`, unless it holds an unsettled rollout's candidate (a step killed
    after applying its canary), whose record names what served before it."""
    if existing is None or not unsettled(existing, champion, now, judged):
        return existing
    meta = existing.get("metadata") or {}
    try:
        recorded = json.loads(_annotations(existing)[PREVIOUS_KEY])
        if recorded is not None:
            recorded = {"metadata": {"labels": dict(recorded["labels"]), "annotations": dict(recorded["annotations"])},
                        "spec": dict(recorded["spec"]), "status": existing.get("status") or {}}
    except (ValueError, KeyError, TypeError):
        raise RolloutError(f"inferenceservices/{meta.get('name')} in {meta.get('namespace')}: its annotation "
                           f"{PREVIOUS_KEY} (the spec that served before an interrupted rollout) is not what kubepipe "
                           "wrote; check the spec that should serve, then remove the annotation "
                           f"(`kubectl annotate inferenceservice {meta.get('name')} -n {meta.get('namespace')} "
                           f"{PREVIOUS_KEY}-`) and run the deploy again") from None
    return recorded


def check_lease(existing: dict | None, champion, run_id: str, now: float | None = None, *,
                created: bool = False, judged: tuple[str, str | None] | None = None) -> None:
    """Refuse, naming the holder, when another run's unsettled rollout holds the InferenceService's lease. `created`:
    its create just won over this deploy's, so its rollout is in flight unless its judged record (`judged`) says
    it was judged (a first deployment with no registry)."""
    if existing is None or judged_by(existing, judged) or not (created or unsettled(existing, champion, now, judged)):
        return
    holder, until = lease_of(existing)
    if holder == str(run_id or "") or _lapsed(until, _now(now)):
        return  # a retry of the same run, or a holder gone past its lease: this deploy settles its rollout
    meta = existing.get("metadata") or {}
    name, ns = meta.get("name"), meta.get("namespace")
    version = _annotations(existing).get(_VERSION_KEY)
    text = (f"inferenceservices/{name} in {ns} is being rolled out by run {holder or '(no run id)'} (version "
            f"{version}): its lease (annotation {LEASE_KEY}) lapses at {until}; nothing was changed. ")
    if _annotations(existing).get(HOLDS_KEY) == UNTIL_LAPSED:
        text += (f"Run the deploy again once that run finished (its judged record, leases/{JUDGED_PREFIX}{name}, then "
                 "lets a deploy go on at once), or once the lease lapsed: that rollout had no registry and no canary "
                 "split, so nothing on the InferenceService tells a finished one from one in flight, and one killed "
                 "before it recorded its judgement (or whose record could not be written: see its warning) holds its "
                 "lease's whole time (with a model registry a deploy is held only until the champion moves); a deploy "
                 "then takes it as done and goes on")
    else:
        text += (f"Wait for that run to finish, or stop it, and run the deploy again; once the lease lapses a deploy "
                 f"settles its rollout (rolled back unless the registry's champion is version {version}) and goes on")
    error = RolloutError(text, retryable=False)
    error.status = 409
    raise error


def fence(isvc: Isvc, holder: tuple[str, str | None]) -> dict | None:
    """The object as it is now, when it still names `holder`'s lease; else a RolloutError saying who took it."""
    current = isvc.get()
    if current is not None and lease_of(current) != holder:
        run, until = lease_of(current)
        raise LeaseLost(f"inferenceservices/{isvc.name} in {isvc.ns} was taken over by run {run or '(no run id)'} "
                           f"(lease until {until}) after this rollout's lease ({holder[1]}) lapsed; it was left as that "
                           "run wrote it (this rollout's version did not become champion): see `kubectl get "
                        f"inferenceservice {isvc.name} -n {isvc.ns}`", retryable=False)
    return current


def fenced_patch(isvc: Isvc, patch: dict, holder: tuple[str, str | None]) -> None:
    """A merge patch made only while the object names `holder`'s lease (the resourceVersion read with it: 409 on a
    write between, read again)."""
    for attempt in range(3):
        current = fence(isvc, holder)
        if current is None:
            raise RolloutError(f"inferenceservices/{isvc.name} in {isvc.ns} is gone: another client deleted it during "
                               "the rollout", retryable=False)
        body = {**patch, "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}}
        try:
            return isvc.patch(body)
        except RolloutError as exc:
            if exc.status != 409 or attempt == 2:
                raise
    return None


def restore(isvc: Isvc, previous: dict, version, *, pin: bool, deadline: float, poll_s: float,
            holder: tuple[str, str | None]) -> str:
    """Put the previous spec back; what the report says of it. Before the promotion it is pinned with
    `canaryTrafficPercent: 0`, KServe's rollback: all traffic on the last rolled-out revision. After it, that revision
    is the new version's, which the pin kept at 100% ("rolled back" while the new version served everything): the
    previous spec then takes all traffic as a revision of its own, once it is Ready (Knative serves the new one until
    then). Only while the object names `holder`'s lease; a conflict (another writer between read and write) is read
    again and retried."""
    for attempt in range(3):
        current = fence(isvc, holder)
        if current is None:  # no object to put the spec on: said as the cluster is, not as 'is KServe installed?'
            return "; the InferenceService is gone, so nothing was restored: run the deploy again to create it"
        restored = with_spec(current, previous)
        restored["spec"]["predictor"].pop("canaryTrafficPercent", None)
        if pin:
            restored["spec"]["predictor"]["canaryTrafficPercent"] = 0
        restored["metadata"]["annotations"]["kubepipe.dev/rolled-back-version"] = str(version)
        try:
            isvc.replace(restored)
            break
        except RolloutError as exc:
            if exc.status != 409 or attempt == 2:
                raise
    if pin:
        return "; previous spec restored with canaryTrafficPercent 0"
    if mode(previous) == "serverless":
        ok, why, _ = wait_ready(isvc, canary=True, deadline=deadline, poll_s=poll_s)
        if not ok:
            raise RolloutError(f"the previous spec was restored, but its revision did not become Ready: {why}")
        return "; previous spec restored and Ready, with all traffic"
    return "; previous spec restored"


def settle(isvc: Isvc, existing: dict | None, champion, *, deadline: float, poll_s: float,
           judged: tuple[str, str | None] | None = None) -> tuple[dict | None, str]:
    """Settle the unsettled rollout `existing` holds (its lease checked first: `check_lease`), before this deploy
    validates or changes anything, so a retry that then refuses leaves no killed canary on its share. Committed when
    the registry's champion is its version (a champion moved to it by hand too): its canary is promoted; else rolled
    back to the spec its record names (a first deployment's is deleted). Returns the object as it is now and a note
    ('' when there was nothing to settle; `judged`: the pair its judged record names)."""
    if existing is None or not unsettled(existing, champion, isvc.now(), judged):
        return existing, ""
    previous = served_before(existing, champion, isvc.now(), judged)  # a record kubepipe cannot read stops here, nothing changed
    holder = lease_of(existing)
    notes = _annotations(existing)
    version, canary = notes.get(_VERSION_KEY), existing["spec"].get("predictor", {}).get("canaryTrafficPercent")
    what = f"an interrupted rollout of version {version} (run {holder[0] or '(no run id)'})"
    if champion is not ANY and str(champion) == version:  # canary on: the champion moved to it by hand meanwhile
        fenced_patch(isvc, {"spec": {"predictor": {"canaryTrafficPercent": None}}}, holder)
        ok, why, obj = wait_ready(isvc, canary=False, deadline=deadline, poll_s=poll_s)
        if not ok:
            raise RolloutError(f"{what} is the champion's version: its canary was promoted to 100%, but it did not "
                               f"settle: {why}; run the deploy again once it is Ready")
        return obj, f"{what} is the champion's version: its promotion was finished"
    if previous is None:
        fence(isvc, holder)
        isvc.delete()
        return None, f"{what} was rolled back: a first deployment, so the InferenceService was deleted"
    note = restore(isvc, previous, version, pin=mode(existing) == "serverless" and canary is not None,
                   deadline=deadline, poll_s=poll_s, holder=holder)
    return isvc.get(), f"{what} was rolled back{note}"
