"""Roll out an InferenceService: apply, wait for Ready, smoke the canary, promote or roll back.

Serverless mode (Knative; the default) — a real canary:
0. check the manifest against the InferenceService CRD installed in the cluster
   (apiextensions API; "KServe is not installed" when there is none);
1. create the InferenceService, or replace the spec of the existing one with
   `canaryTrafficPercent: N` so KServe sends N % to the new revision and keeps
   the rest on the last rolled-out one;
2. wait until the controller has seen the new generation and the new revision
   is Ready (`status.conditions[Ready]`, `latestReadyRevision ==
   latestCreatedRevision`), failing fast on `modelStatus` FailedToLoad;
3. smoke the canary through its own URL (tag routing: the `latest` traffic
   entry), or through `base_url` (the ingress gateway) with its Host header;
4. promote: drop `canaryTrafficPercent` (100 % to the new revision), wait for
   it, then move the registry champion (only if it is still the one read before
   step 1: else roll back, and the step fails); or roll back: restore the previous
   spec pinned with `canaryTrafficPercent: 0` (all traffic on the previous
   rolled-out revision, the bad one gets none) and leave the champion alone.
   After the promotion the new revision is the rolled-out one, so the previous
   spec goes back unpinned and takes all traffic as a revision of its own once
   Ready. A rollback that fails is the step's error, saying what still serves.

Crash safety (decision 0009's intent before action): the canary spec is written with the spec that served before
it in the annotation `kubepipe.dev/rollout-previous`. A retry after the step was killed mid-canary (or after the
promotion, before the champion moved) finds it there, and restores that spec, not the interrupted candidate's, when
it rolls back. A rollback drops it (it writes the previous spec back); a promotion leaves it, as removing it would
change the revision template (KServe copies annotations onto it) and roll out one more revision of the same model: a
retry reads it as settled once the spec has no canary and the registry's champion is the version it serves. A deploy
settles such a rollout before anything else (`isvc_record.settle`); the canary's write also carries this run's lease,
which keeps another run's deploy out while the rollout is unsettled (`isvc_record`, decision 0021).

Limits, stated plainly:
- A first deployment has no previous revision to split traffic with, so it
  goes to 100 % at once; a failure there deletes the InferenceService.
- Canary needs KServe Serverless mode. In RawDeployment mode KServe ignores
  `canaryTrafficPercent`; kubepipe then does a rolling update with a
  readiness gate (maxUnavailable 0: old pods serve until new ones pass the
  `/v2/models/NAME/ready` probe), smokes the service URL after the rollout
  and rolls back by restoring the previous spec. Smoke traffic there hits the
  whole service, and users may see the new model before the smoke verdict.
- The pipeline's service account needs get/create/update/patch/delete on
  `inferenceservices.serving.kserve.io` in the target namespace, get on
  `customresourcedefinitions/inferenceservices.serving.kserve.io` (cluster scope), and get/create/update/patch on
  `leases.coordination.k8s.io` for the judged record (`judged_record`; without them, a warning and the lease holds).
"""

from __future__ import annotations

import copy
import time

from kubepipe.components.deploy.champion import ANY, PromotionFailed, current_champion, promote_champion
from kubepipe.components.deploy.crd import cluster_schema, validate_manifest
from kubepipe.components.deploy.isvc_api import (GROUP, PLURAL, VERSION, Isvc, RolloutError, kube_api_client,
                                                  readiness, smoke_url, wait_ready)
from kubepipe.components.deploy.isvc_record import (HOLDS_KEY, LEASE_KEY, LEASE_SLACK_S, PREVIOUS_KEY, RUN_KEY,
                                                    UNTIL_LAPSED, LeaseLost,
                                                    check_lease, fence, fenced_patch, lease_of, lease_until, record,
                                                    restore,
                                                    settle, with_spec)
from kubepipe.components.deploy.isvc_record import mode as mode_of
from kubepipe.components.deploy.judged_record import JudgedRecord
from kubepipe.components.deploy.lease_holder import lease_holder
from kubepipe.components.deploy.smoke import SmokeFailed, SmokeFn, SmokeTarget, http_smoke, ingress_target
from kubepipe.components.registry import ChampionMoved
from kubepipe.util import failpoint

__all__ = ["GROUP", "VERSION", "PLURAL", "RolloutError", "rollout", "readiness", "kube_api_client"]

_MODEL_LABEL = "kubepipe.dev/model"  # the model an InferenceService serves (inference_service.py)


def rollout(manifest: dict, *, registry_uri: str | None = None, model_name: str | None = None,
            version=None, smoke_inputs: list | tuple = (), smoke: SmokeFn | None = None,
            base_url: str | None = None, timeout_s: float = 600, poll_s: float = 2.0,
            api_client=None, canary_analysis: dict | None = None, prometheus_url: str | None = None,
            prometheus_client=None, _raced: bool = False) -> dict:
    """Roll out `manifest` (an InferenceService dict) and return the report dict.

    Report: `action` (promoted | rolled_back), `why`, `name`, `namespace`,
    `mode`, `url`, `canary_percent`, `first_deployment`, `smoke`, `champion`,
    `timings` (seconds: check, apply, ready, smoke, bake, finalize, total), and `canary_analysis` when
    `canary_analysis` settings were given: after the smoke test the canary keeps its share for
    `bake_s` seconds, then its revision is compared with the previous one on Prometheus' numbers
    (`prometheus.revision_stats`); a failed analysis rolls back like a failed smoke test.
    """
    given = dict(locals())  # the arguments, for a start over (a first deployment's create that lost a race)
    from kubepipe.components.deploy.canary_analysis import analysis_settings

    settings = analysis_settings(canary_analysis)
    t_check = time.monotonic()
    timings: dict = {}
    meta = manifest["metadata"]
    name, ns = meta["name"], meta.get("namespace") or "default"
    mode = mode_of(manifest)
    api = api_client if api_client is not None else kube_api_client()
    schema = cluster_schema(api)  # the KServe version in *this* cluster; none there: a clear error, nothing done
    isvc = Isvc(api, ns, name)
    judged = JudgedRecord(api, ns, name)  # a rollout with nothing else to settle it: the record that it was judged
    smoke = smoke or http_smoke
    report = {"name": name, "namespace": ns, "mode": mode, "version": version, "url": None,
              "smoke": None, "champion": {"moved": False}, "timings": timings}

    existing = isvc.get()
    owner = ((existing or {}).get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/managed-by")
    if existing is not None and owner != "kubepipe":
        raise RolloutError(f"inferenceservices/{name} in {ns} exists and is not managed by kubepipe "
                           f"(label app.kubernetes.io/managed-by={owner!r}); pick another model_name or "
                           "label it app.kubernetes.io/managed-by=kubepipe to let kubepipe take it over")
    serves = ((existing or {}).get("metadata", {}).get("labels") or {}).get(_MODEL_LABEL)
    mine = (meta.get("labels") or {}).get(_MODEL_LABEL)
    if existing is not None and serves and mine and serves != mine:  # two model names, one InferenceService name
        raise RolloutError(f"inferenceservices/{name} in {ns} serves model {serves!r}, not {mine!r}: both names "
                           f"make the InferenceService name {name!r} (lowercase, '_' as '-', 45 characters); "
                           "rename one model_name, or deploy it to another namespace")
    # the champion this rollout replaces, read before the canary: a `models promote` during the bake is not undone
    expect = current_champion(registry_uri, model_name or name) if registry_uri and version not in (None, "") else ANY
    run_id = lease_holder((meta.get("annotations") or {}).get(RUN_KEY))  # none given: this call's own
    record_of = judged.read_for(existing, isvc.now())  # the (run, lease-until) a rollout with no split was judged at
    # another run's rollout in flight: refused, naming it, nothing changed
    check_lease(existing, expect, run_id, isvc.now(), judged=record_of)
    # a rollout a killed step left is settled first: a refusal below leaves no unjudged canary on its share
    existing, repaired = settle(isvc, existing, expect, deadline=time.monotonic() + timeout_s, poll_s=poll_s,
                               judged=record_of)
    if repaired:
        report["repaired"] = repaired
    previous = existing
    report["first_deployment"] = previous is None
    if settings and mode == "raw":
        raise RolloutError("canary_analysis needs a canary, and KServe ignores canaryTrafficPercent in "
                           "RawDeployment mode; use deployment_mode: serverless or drop canary_analysis")
    if settings and not prometheus_url:
        raise RolloutError("canary_analysis reads the revisions' metrics from Prometheus: set prometheus_url in "
                           "the target profile (e.g. http://prometheus-operated.monitoring:9090)")
    body = copy.deepcopy(manifest)
    pred = body["spec"]["predictor"]
    if previous is None or mode == "raw":
        pred.pop("canaryTrafficPercent", None)  # nothing to split with / ignored by KServe
    canary = pred.get("canaryTrafficPercent")
    report["canary_percent"] = canary
    validate_manifest(body, schema=schema)  # what is applied, before anything changes in the cluster
    timings["check"] = round(time.monotonic() - t_check, 3)
    t0 = time.monotonic()  # timeout_s bounds the rollout itself, not reading and checking the CRD
    applied = body if existing is None else with_spec(existing, body)
    # timed on the API server's clock (the last read's): the pods' clocks may disagree
    holder = (run_id, lease_until(timeout_s + (settings or {}).get("bake_s", 0) + LEASE_SLACK_S, isvc.now()))
    notes = applied["metadata"].setdefault("annotations", {})
    notes.update({PREVIOUS_KEY: record(previous), LEASE_KEY: holder[1], RUN_KEY: run_id})
    if canary is None and expect is ANY:  # nothing will say this rollout was judged: its lease holds to its end
        notes[HOLDS_KEY] = UNTIL_LAPSED
    try:  # with the resourceVersion read above (create: none may exist): of two deploys, one gets the lease
        isvc.create(applied) if existing is None else isvc.replace(applied)
    except RolloutError as exc:
        if exc.status != 409:
            raise
        current = isvc.get()  # the other write won: refused, unless its rollout was judged or its lease is this run's
        check_lease(current, expect, run_id, isvc.now(), created=existing is None,
                    judged=judged.read_for(current, isvc.now()))
        if existing is not None or _raced:
            raise
        # a first deployment whose create lost to one the lease lets it follow (its own run's, a lapsed one's):
        # from the top, as a deploy that found it
        return rollout(**{**given, "api_client": api, "_raced": True})
    failpoint("deploy.kserve-applied")
    timings["apply"] = round(time.monotonic() - t0, 3)

    def finish(action: str, why: str) -> dict:
        report.update(action=action, why=why)
        if judged.warnings:
            report["warning"] = "; ".join(judged.warnings)
        timings["total"] = round(time.monotonic() - t_check, 3)
        return report

    # canaryTrafficPercent removed: KServe counts the new revision as the rolled-out one from then (so had an
    # interrupted rollout's candidate that left no canary split: a pin would keep it serving)
    promoted = False

    def roll_back(why: str) -> dict:
        t = time.monotonic()
        try:
            if previous is None:
                fence(isvc, holder)
                isvc.delete()
                why += "; first deployment, so the InferenceService was deleted"
            else:
                why += restore(isvc, previous, version, pin=mode == "serverless" and not promoted,
                               deadline=max(deadline, time.monotonic() + 60), poll_s=poll_s, holder=holder)
        except LeaseLost:  # another run's rollout owns it now: what it serves is that run's to say
            raise
        except RolloutError as exc:  # said with what the cluster does now: the step's error hid the reason
            raise RolloutError(f"{why}; rolling back failed too: {exc}; {_left_serving(report, promoted)}",
                               retryable=False) from None
        timings["finalize"] = round(time.monotonic() - t, 3)
        # where the old version serves: the canary's tagged URL (the report's `endpoint`) reached the rolled-back one
        report["url"] = None if previous is None else (previous.get("status") or {}).get("url")
        report["champion"] = {"moved": False, "why": "rollout failed; champion left as it was"}
        return finish("rolled_back", why)

    deadline = t0 + timeout_s
    ok, why, obj = wait_ready(isvc, canary=canary is not None, deadline=deadline, poll_s=poll_s)
    timings["ready"] = round(time.monotonic() - t0 - timings["apply"], 3)
    if not ok:
        return roll_back(f"new revision {why}")

    url = smoke_url(obj, mode, base_url)
    report["url"] = url
    t = time.monotonic()
    try:
        reach = url or base_url
        if not reach:
            raise SmokeFailed("smoke: the InferenceService status has no URL and no ingress_url is configured")
        target_url, host = ingress_target(reach, base_url)
        report["smoke"] = smoke(SmokeTarget(url=target_url, host=host, model=name, inputs=list(smoke_inputs)))
    except SmokeFailed as exc:
        timings["smoke"] = round(time.monotonic() - t, 3)
        return roll_back(str(exc))
    except Exception as exc:  # noqa: BLE001 - a smoke function's own bug: the unjudged canary must not keep its share
        timings["smoke"] = round(time.monotonic() - t, 3)
        return roll_back(f"smoke: the smoke test itself failed ({type(exc).__name__}: {str(exc)[:200]})")
    timings["smoke"] = round(time.monotonic() - t, 3)

    details = None
    if settings and canary is not None and prometheus_url:  # settings without a prometheus_url: refused above
        from kubepipe.components.deploy.prometheus import PrometheusError

        t = time.monotonic()
        try:
            analysis = _analyse(obj, settings, prometheus_url, ns, canary, prometheus_client)
        except (PrometheusError, RolloutError) as exc:  # no numbers: inconclusive, and inconclusive rolls back
            from kubepipe.components.deploy.champion import audit_rollback

            timings["bake"] = round(time.monotonic() - t, 3)
            why = f"canary analysis could not judge the canary (inconclusive rolls back): {exc}"
            out = roll_back(why)
            report["audit"] = audit_rollback(registry_uri, model_name or name, version, reason=why)
            return out
        timings["bake"] = round(time.monotonic() - t, 3)
        report["canary_analysis"] = analysis
        details = {"canary_analysis": analysis}
        if analysis["decision"] != "promote":
            from kubepipe.components.deploy.champion import audit_rollback

            out = roll_back(analysis["why"])
            report["audit"] = audit_rollback(registry_uri, model_name or name, version, reason=analysis["why"],
                                             details=details)
            return out
    elif settings:
        report["canary_analysis"] = None  # a first deployment: no previous revision to compare with

    t = time.monotonic()
    if canary is not None:
        try:
            fenced_patch(isvc, {"spec": {"predictor": {"canaryTrafficPercent": None}}}, holder)  # merge-patch: remove
        except RolloutError as exc:  # raised with the judged canary left on its share, and no rollback
            return roll_back(f"promotion to 100% was refused: {exc}")
        promoted = True
        failpoint("deploy.kserve-promoted")
        ok, why, obj = wait_ready(isvc, canary=False, deadline=max(deadline, time.monotonic() + 60), poll_s=poll_s)
        if not ok:
            return roll_back(f"promotion to 100% did not settle: {why}")
        report["url"] = (obj.get("status") or {}).get("url") or url
    reason = f"rollout of {name} ({mode}) passed readiness and smoke" + (f" at {canary}% canary" if canary else "")
    if details:
        reason = f"{reason}; {details['canary_analysis']['why']}"
    try:
        report["champion"] = promote_champion(registry_uri, model_name or name, version, reason=reason,
                                              details=details, expect=expect)
    except (ChampionMoved, PromotionFailed) as exc:  # the previous spec serves again, as for a failed canary
        roll_back(str(exc))
        raise
    if notes.get(HOLDS_KEY) == UNTIL_LAPSED:  # judged: another run's deploy may go on at once (judged_record)
        failpoint("deploy.kserve-judged")
        current = isvc.get()
        if current is not None and lease_of(current) == holder:  # not over a run that took it after this lease lapsed
            judged.write(holder, current, version)
    timings["finalize"] = round(time.monotonic() - t, 3)
    return finish("promoted", reason)


def _left_serving(report: dict, promoted: bool) -> str:
    """What the cluster serves after a rollback that failed, and what to do: the champion has not moved."""
    where = f"inferenceservice {report['name']} -n {report['namespace']}"
    if report["first_deployment"]:
        now = "the new InferenceService is still there"
    elif promoted or report["mode"] == "raw" or report["canary_percent"] is None:
        now = "the new version may take all of the traffic"
    else:
        now = f"the canary still takes {report['canary_percent']}% of the traffic"
    return (f"{now}, and the registry's champion did not move; see `kubectl get {where}`, and restore the previous "
            f"spec by hand (`kubectl edit {where}`) or run the deploy again once the cause is fixed")


def _revisions(obj: dict) -> tuple[str | None, str | None]:
    """(canary revision, stable revision) from the predictor's traffic split."""
    pred = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
    canary = stable = None
    for entry in pred.get("traffic") or []:
        if entry.get("latestRevision") or entry.get("tag") == "latest":
            canary = canary or entry.get("revisionName")
        elif entry.get("revisionName"):
            stable = stable or entry["revisionName"]
    # KServe sends the rest of a canary split to latestRolledoutRevision (previousRolledoutRevision is the one before)
    return canary or pred.get("latestReadyRevision"), stable or pred.get("latestRolledoutRevision")


def _analyse(obj: dict, settings: dict, prometheus_url: str, namespace: str, percent, client) -> dict:
    """Hold the canary for bake_s, then compare its revision with the stable one on Prometheus' numbers."""
    from kubepipe.components.deploy.canary_analysis import analyze, preload
    from kubepipe.components.deploy.prometheus import revision_stats

    canary_rev, stable_rev = _revisions(obj)
    if not canary_rev or not stable_rev:
        raise RolloutError(f"canary analysis: the InferenceService status names no canary/stable revisions "
                           f"(traffic: {((obj.get('status') or {}).get('components') or {}).get('predictor', {}).get('traffic')})")
    if canary_rev == stable_rev:  # one revision's numbers against themselves passed every check
        raise RolloutError(f"canary analysis: the canary and the stable revision are the same, {canary_rev}: the spec "
                           "applied made no new Knative revision (the one already serving), so there is no canary to "
                           "compare with it")
    t0 = time.monotonic()
    preload()  # inside the bake: not between the queries and the decision
    time.sleep(max(0.0, settings["bake_s"] - (time.monotonic() - t0)))
    stats = {rev: revision_stats(prometheus_url, namespace=namespace, revision=rev, window_s=settings["bake_s"],
                                 client=client) for rev in (stable_rev, canary_rev)}
    result = analyze(stats[stable_rev], stats[canary_rev], settings)
    result.update(percent=percent, canary_revision=canary_rev, stable_revision=stable_rev)
    return result
