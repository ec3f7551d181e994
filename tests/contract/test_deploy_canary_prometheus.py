"""Canary analysis on KServe: the real kubernetes client against a fake Kubernetes API, and the revision
metrics from a fake Prometheus HTTP API on loopback (plain HTTP, httpx)."""

from __future__ import annotations

import pytest

from deploy_fake_kube import FakeKube
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.deploy.kserve_rollout import RolloutError, rollout
from kubepipe.components.deploy.prometheus import PrometheusError, revision_stats
from deploy_world import champion_registry, kube_client
from prometheus_fake import FakePrometheus

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"
NS = "serving"
REV1, REV2 = f"{NAME}-predictor-00001", f"{NAME}-predictor-00002"  # the fake controller's revision names
ANALYSIS = {"bake_s": 0.05, "min_requests": 20}


@pytest.fixture()
def registry(tmp_path):
    return champion_registry(tmp_path, NAME)


def _roll(kube, prom, registry, version: str, **kw):
    manifest = inference_service_manifest(ServiceConfig(
        model_name=NAME, storage_uri=f"gs://b/models/{version}", image="runtime:1", version=version, namespace=NS,
        canary_percent=10, run_id="run-a"))  # its retries: the same run
    return rollout(manifest, registry_uri=registry.uri, model_name=NAME, version=int(version), timeout_s=5,
                   poll_s=0.01, api_client=kube_client(kube.url), smoke_inputs=["uber ride"],
                   prometheus_url=prom.url if prom else None, **kw)


def _stable(prom):
    prom.add_revision(NS, REV1, requests=900, errors=0, latencies_ms=[12] * 890 + [45] * 10,
                      labels={"dining": 450, "travel": 450})


def test_canary_with_5xx_in_prometheus_is_rolled_back_pinned_and_audited(registry):
    with FakeKube() as kube, FakePrometheus() as prom:
        assert _roll(kube, None, registry, "1")["action"] == "promoted"  # first: no analysis needed
        _stable(prom)
        prom.add_revision(NS, REV2, requests=100, errors=4, latencies_ms=[12] * 100, labels={"dining": 50, "travel": 46})
        report = _roll(kube, prom, registry, "2", canary_analysis=ANALYSIS)
        obj = kube.objects[(NS, NAME)]
    a = report["canary_analysis"]
    assert report["action"] == "rolled_back" and a["decision"] == "rollback"
    assert (a["canary_revision"], a["stable_revision"]) == (REV2, REV1)
    assert a["canary"]["errors_5xx"] == 4 and a["canary"]["error_rate"] == 0.04 and a["stable"]["error_rate"] == 0.0
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0  # pinned on the previous revision
    assert registry.alias(NAME, "champion").version == 1
    event = registry.history(NAME)[-1]
    assert event["action"] == "canary-rollback" and event["canary_analysis"]["canary"]["errors_5xx"] == 4
    # the queries named the revision and the bake window, as Prometheus needs them
    assert any(f'revision_name="{REV2}",response_code_class="5xx"' in q and "[1s]" in q for q in prom.queries)
    assert any(f'pod=~"{REV2}-deployment-.*"' in q for q in prom.queries)


def test_a_registry_failing_the_audit_record_after_the_rollback_still_reports_rolled_back(registry, monkeypatch,
                                                                                           capsys):
    """The registry unreachable when the rollback's audit event is written failed the deploy step, so the run said
    the deploy failed while the rollback had happened; it reports `rolled_back` and warns of the missing record."""
    from kubepipe.components.registry import Registry

    with FakeKube() as kube, FakePrometheus() as prom:
        assert _roll(kube, None, registry, "1")["action"] == "promoted"
        _stable(prom)
        prom.add_revision(NS, REV2, requests=100, errors=4, latencies_ms=[12] * 100, labels={"dining": 96})

        def unreachable(self, *a, **kw):
            raise OSError("[Errno 113] No route to host")

        monkeypatch.setattr(Registry, "record_event", unreachable)
        report = _roll(kube, prom, registry, "2", canary_analysis=ANALYSIS)
        obj = kube.objects[(NS, NAME)]
    assert report["action"] == "rolled_back" and obj["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert report["audit"]["recorded"] is False and "No route to host" in report["audit"]["error"]
    assert "warning: the rollback of `merchant-categorizer` v2 is done and the champion did not move, but its " \
           "`canary-rollback` event could not be written" in capsys.readouterr().err
    assert registry.alias(NAME, "champion").version == 1


def test_healthy_canary_is_promoted_with_its_numbers_in_the_history(registry):
    with FakeKube() as kube, FakePrometheus() as prom:
        _roll(kube, None, registry, "1")
        _stable(prom)
        prom.add_revision(NS, REV2, requests=100, errors=0, latencies_ms=[11] * 99 + [40],
                          labels={"dining": 52, "travel": 48})
        report = _roll(kube, prom, registry, "2", canary_analysis=ANALYSIS)
    a = report["canary_analysis"]
    assert report["action"] == "promoted" and a["decision"] == "promote", report["why"]
    assert a["canary"]["requests"] == 100 and a["canary"]["labels"] == {"dining": 52, "travel": 48}
    assert a["canary"]["p99_ms"] is not None and a["stable"]["p99_ms"] is not None
    assert registry.alias(NAME, "champion").version == 2
    assert registry.history(NAME)[-1]["canary_analysis"]["decision"] == "promote"
    assert "canary analysis passed" in report["champion"]["reason"]


def test_a_champion_promoted_by_hand_during_the_bake_stays_and_the_step_fails(tmp_path, monkeypatch):
    """The canary (v2) was compared with v1; a person promoted v3 during the bake: the healthy canary's promotion
    replaced v3 silently. The champion stays v3, the previous spec serves again, the step fails naming both."""
    from kubepipe.components.deploy import canary_analysis
    from kubepipe.components.registry import ChampionMoved

    registry = champion_registry(tmp_path, NAME, versions=3)
    real = canary_analysis.preload
    monkeypatch.setattr(canary_analysis, "preload", lambda: (registry.promote(NAME, 3, reason="hotfix"), real()))
    with FakeKube() as kube, FakePrometheus() as prom:
        _roll(kube, None, registry, "1")
        _stable(prom)
        prom.add_revision(NS, REV2, requests=100, errors=0, latencies_ms=[11] * 100, labels={"dining": 52, "travel": 48})
        with pytest.raises(ChampionMoved) as err:
            _roll(kube, prom, registry, "2", canary_analysis=ANALYSIS)
        obj = kube.objects[(NS, NAME)]
    msg = str(err.value)
    assert msg.startswith(f"deploy of `{NAME}` v2: model `{NAME}`: the champion moved from v1 to v3 while you were "
                          "promoting v2 (promote by ")
    assert f"the deploy was rolled back (the new version does not serve); if v2 should still be champion, run the " \
           f"deploy again (or `kubepipe models promote {NAME} 2 --reason ...`)" in msg
    assert registry.alias(NAME, "champion").version == 3
    # promoted before the champion check: v2's revision was the rolled-out one, which a `canaryTrafficPercent: 0` pin
    # kept at 100%; v1's spec takes all traffic as a revision of its own
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"] and "gs://b/models/2" not in str(obj["spec"])
    pred = obj["status"]["components"]["predictor"]
    assert [(t["revisionName"], t["percent"]) for t in pred["traffic"]] == [(pred["latestReadyRevision"], 100)]
    assert pred["latestReadyRevision"] not in (REV1, REV2)


def test_a_redeploy_after_a_promotion_that_did_not_commit_is_judged_as_a_new_revision(registry):
    """The same spec applied again (a step retried after its promotion, before the champion moved) made no new
    Knative revision: canary and stable were both v2's revision, its numbers matched themselves, and the champion
    moved on an analysis of nothing. The retry now rolls the interrupted v2 back first (v1 serves again, revision 3),
    and its canary is a revision of its own (4), judged against v1's."""
    rev3, rev4 = f"{NAME}-predictor-00003", f"{NAME}-predictor-00004"
    with FakeKube() as kube, FakePrometheus() as prom:
        _roll(kube, None, registry, "1")
        _roll(kube, None, registry, "2")
        registry.promote(NAME, 1, reason="the earlier attempt stopped before its champion move")
        prom.add_revision(NS, rev3, requests=900, errors=0, latencies_ms=[12] * 900, labels={"dining": 450,
                                                                                           "travel": 450})
        prom.add_revision(NS, rev4, requests=100, errors=0, latencies_ms=[12] * 100, labels={"dining": 50, "travel": 50})
        report = _roll(kube, prom, registry, "2", canary_analysis=ANALYSIS)
    assert "version 2 (run run-a) was rolled back; previous spec restored and Ready" in report["repaired"]
    a = report["canary_analysis"]
    assert (a["canary_revision"], a["stable_revision"]) == (rev4, rev3) and a["decision"] == "promote"
    assert report["action"] == "promoted" and registry.alias(NAME, "champion").version == 2


def test_a_canary_that_is_the_stable_revision_is_not_judged_against_itself():
    """Were the applied spec to make no new revision, one revision's numbers would pass every check against
    themselves: the analysis refuses to judge."""
    from kubepipe.components.deploy.kserve_rollout import _analyse

    same = {"status": {"components": {"predictor": {"traffic": [
        {"revisionName": REV2, "percent": 100, "latestRevision": True, "tag": "latest"}],
        "latestRolledoutRevision": REV2}}}}
    with pytest.raises(RolloutError, match=f"the canary and the stable revision are the same, {REV2}: the spec "
                                          "applied made no new Knative revision"):
        _analyse(same, {"bake_s": 0}, "http://127.0.0.1:9", NS, 10, None)


def test_slow_canary_rolls_back_on_p99(registry):
    with FakeKube() as kube, FakePrometheus() as prom:
        _roll(kube, None, registry, "1")
        _stable(prom)
        prom.add_revision(NS, REV2, requests=100, errors=0, latencies_ms=[12] * 90 + [900] * 10,
                          labels={"dining": 50, "travel": 50})
        report = _roll(kube, prom, registry, "2", canary_analysis=ANALYSIS)
    assert report["action"] == "rolled_back" and "p99_ms" in report["why"]


def test_prometheus_down_rolls_the_canary_back_and_missing_is_a_clear_error(registry):
    """Prometheus answering 503 after the bake raised out of the rollout and left the unjudged canary taking 10% of
    the traffic; a retried step then took that spec as the one to restore."""
    with FakeKube() as kube, FakePrometheus(status=503) as prom:
        _roll(kube, None, registry, "1")
        report = _roll(kube, prom, registry, "2", canary_analysis=ANALYSIS)
        obj = kube.objects[(NS, NAME)]
        assert report["action"] == "rolled_back"
        assert report["why"].startswith("canary analysis could not judge the canary (inconclusive rolls back): "
                                        f"prometheus_url {prom.url}: query ")
        assert "answered 503" in report["why"] and report["why"].endswith("; previous spec restored with "
                                                                          "canaryTrafficPercent 0")
        assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0  # pinned on the previous revision
        assert "gs://b/models/1" in str(obj["spec"]) and "gs://b/models/2" not in str(obj["spec"])
        assert registry.alias(NAME, "champion").version == 1
        assert registry.history(NAME)[-1]["action"] == "canary-rollback"
        with pytest.raises(RolloutError, match="prometheus_url"):
            _roll(kube, None, registry, "2", canary_analysis=ANALYSIS)


def test_a_canary_refusing_the_clients_requests_with_4xx_is_rolled_back():
    """Only 5xx counted: a canary answering 400 to the real clients' schema had no errors and was promoted."""
    from kubepipe.components.deploy.canary_analysis import analyze

    with FakePrometheus() as prom:
        _stable(prom)
        prom.add_revision(NS, REV2, requests=100, errors=0, client_errors=90, latencies_ms=[12] * 100, labels={})
        stable, canary = (revision_stats(prom.url, namespace=NS, revision=r, window_s=60) for r in (REV1, REV2))
    assert (canary["errors_4xx"], stable["errors_4xx"]) == (90, 0)
    assert any(f'revision_name="{REV2}",response_code_class="4xx"' in q for q in prom.queries)
    out = analyze(stable, canary, ANALYSIS)
    assert out["decision"] == "rollback"
    assert "client_error_rate 0.9 > 0.05 (stable 0.0): the canary refuses (4xx) more" in out["why"]


def test_revision_stats_shape_matches_the_local_proxy():
    with FakePrometheus() as prom:
        prom.add_revision(NS, REV1, requests=10, errors=1, latencies_ms=[3] * 10, labels={"a": 6, "b": 4})
        got = revision_stats(prom.url, namespace=NS, revision=REV1, window_s=30)
    assert got["requests"] == 10 and got["errors_5xx"] == 1 and got["labels"] == {"a": 6, "b": 4}
    assert got["latency_ms_buckets"]["+Inf"] == 10 and got["latency_ms_buckets"]["5"] == 10


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -3.0])
def test_a_count_prometheus_gives_as_nan_inf_or_negative_is_a_located_error(bad):
    with FakePrometheus() as prom:
        prom.add_revision(NS, REV1, requests=10, errors=0, latencies_ms=[3] * 10, labels={"a": 10})
        prom.series = [(m, lab, bad if lab.get("le") == "+Inf" else v) for m, lab, v in prom.series]
        with pytest.raises(PrometheusError) as err:
            revision_stats(prom.url, namespace=NS, revision=REV1, window_s=30)
    msg = str(err.value)
    assert f"prometheus_url {prom.url}: query 'sum by (le) (increase(revision_app_request_latencies_bucket" in msg
    assert f"gave {repr(bad)!r} for {{'le': '+Inf'}}, not a count (finite, >= 0): the canary cannot be judged" in msg


def test_a_burst_of_5xx_before_the_new_series_first_scrape_is_counted():
    """A new canary's 5xx series is born with its first 5xx; increase() counts from the series' first scrape, so 3
    errors in one burst read as 0 and the canary was promoted under 'any 5xx regression rolls back'. The change of
    the series' sum since the window began counts them."""
    from kubepipe.components.deploy.canary_analysis import analyze

    with FakePrometheus() as prom:
        _stable(prom)
        prom.add_revision(NS, REV2, requests=100, errors=0, latencies_ms=[12] * 100,
                          labels={"dining": 50, "travel": 50})
        prom.add_born("revision_app_request_count",
                      {"namespace_name": NS, "revision_name": REV2, "response_code_class": "5xx"}, now=3)
        stable, canary = (revision_stats(prom.url, namespace=NS, revision=r, window_s=60) for r in (REV1, REV2))
    assert (canary["requests"], canary["errors_5xx"]) == (103, 3)
    assert (stable["requests"], stable["errors_5xx"]) == (900, 0)
    assert any(q == f'sum(revision_app_request_count{{namespace_name="{NS}",revision_name="{REV2}",'
                    'response_code_class="5xx"} offset 60s)' for q in prom.queries)
    out = analyze(stable, canary, ANALYSIS)
    assert out["decision"] == "rollback" and "error_rate 0.0291262 > 0.0" in out["why"]


def test_the_5xx_and_4xx_shares_never_add_up_to_more_than_all_requests():
    """Each count was the larger of two figures, rounded on its own, and increase() extrapolates: 5.6 5xx and 4.6 4xx
    of 10.2 requests read 6 + 5 of 10, an error rate of 0.6 and a 4xx rate of 0.5 (110% of the traffic)."""
    from kubepipe.components.deploy.canary_analysis import summary

    with FakePrometheus() as prom:
        rev = {"namespace_name": NS, "revision_name": REV2}
        prom.add("revision_app_request_count", {**rev, "response_code_class": "5xx"}, 5.6)
        prom.add("revision_app_request_count", {**rev, "response_code_class": "4xx"}, 4.6)
        got = revision_stats(prom.url, namespace=NS, revision=REV2, window_s=60)
    assert (got["requests"], got["errors_5xx"], got["errors_4xx"]) == (11, 6, 5)
    shown = summary(got)
    assert (shown["error_rate"], shown["client_error_rate"]) == (0.545455, 0.454545)


def test_prometheus_counts_a_429_with_the_5xx_as_the_proxy_does():
    """Knative's `response_code="429"` answers are in the 4xx class: overload is the revision's own failure, counted
    with the 5xx as the local proxy counts it (revision_stats.OVERLOADED), not under the 4xx bound."""
    with FakePrometheus() as prom:
        rev = {"namespace_name": NS, "revision_name": REV2}
        prom.add("revision_app_request_count", {**rev, "response_code_class": "2xx", "response_code": "200"}, 90)
        prom.add("revision_app_request_count", {**rev, "response_code_class": "4xx", "response_code": "429"}, 4)
        prom.add("revision_app_request_count", {**rev, "response_code_class": "4xx", "response_code": "400"}, 6)
        got = revision_stats(prom.url, namespace=NS, revision=REV2, window_s=60)
    assert (got["requests"], got["errors_5xx"], got["errors_4xx"]) == (100, 4, 6)
    assert any(f'revision_name="{REV2}",response_code="429"' in q for q in prom.queries)


def test_without_traffic_entries_the_stable_revision_is_the_one_kserve_sends_the_rest_to():
    """KServe splits a canary with latestRolledoutRevision; previousRolledoutRevision (the one before it, taking no
    traffic) was read as the stable revision, and the canary was judged against a revision with no answers."""
    from kubepipe.components.deploy.kserve_rollout import _revisions

    pred = {"latestReadyRevision": "m-00003", "latestRolledoutRevision": "m-00002", "previousRolledoutRevision": "m-00001"}
    assert _revisions({"status": {"components": {"predictor": pred}}}) == ("m-00003", "m-00002")
