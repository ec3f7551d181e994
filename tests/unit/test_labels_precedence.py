"""Which label a run carries when several sources give it: the profile file's, the pipeline's, --set's (kubepipe
.plan.label_checks.pipeline_labels); and how a label given on the command line is read."""

from __future__ import annotations

import pytest

PIPELINE = ("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p, labels: {team: ml, tier: gold}}\n"
            "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
VERTEX = ("apiVersion: kubepipe/v1\nkind: Profile\ntarget: vertex\nproject: p\nregion: europe-west4\n"
          "pipeline_root: gs://b/r\nruntime_image: i@sha256:" + "a" * 64 + "\nlabels: {tier: silver, cc: '42'}\n")


@pytest.mark.parametrize("target", ["local", "vertex"])
@pytest.mark.parametrize("given", ["labels.team=payments", "labels.Team=payments"])
def test_a_label_given_with_set_wins_over_the_pipelines(tmp_path, target, given):
    # `--set labels.team=payments` over the pipeline's `team: ml` was dropped, unsaid: the run, the compiled
    # header and the Vertex job all carried `team: ml`
    import kubepipe
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.backends.remote.vertex import job_labels
    from kubepipe.labels import gcp_labels, ir_labels, run_labels

    p, prof = tmp_path / "p.yaml", tmp_path / "vertex.yaml"
    p.write_text(PIPELINE)
    prof.write_text(VERTEX)
    compiled = kubepipe.compile(p, target, sets=[given], profile=prof if target == "vertex" else None)
    key = given.split(".", 1)[1].split("=")[0]
    assert compiled.plan.labels == {"tier": "gold", key: "payments"}  # the pipeline's `team` replaced
    assert ir_labels(compiled.ir_yaml) == compiled.plan.labels
    carried = gcp_labels(run_labels(compiled.profile.labels, compiled.plan.labels))  # a run's record, a job's
    assert carried["team"] == "payments" and carried["tier"] == "gold"
    if target == "vertex":
        labels = job_labels(PipelinePackage.from_compiled(compiled), compiled.profile.model_dump())
        assert (labels["team"], labels["tier"], labels["cc"]) == ("payments", "gold", "42")
    # without --set the pipeline's wins over the profile file's, as documented
    plain = kubepipe.compile(p, target, profile=prof if target == "vertex" else None)
    assert plain.plan.labels == {"team": "ml", "tier": "gold"}


def test_ctx_labels_of_a_step_carry_the_set_label(tmp_path):
    from kubepipe.plan.label_checks import pipeline_labels
    from kubepipe.spec import load_profile
    from kubepipe.spec.models import Metadata

    meta = Metadata(name="p", labels={"team": "ml"}, owner="ana@example.com")
    profile = load_profile("local", sets={"labels.team": "payments", "labels.owner": "bob"}, start=tmp_path)
    assert pipeline_labels(meta, profile) == {"team": "payments", "owner": "bob"}
    assert pipeline_labels(meta, load_profile("local", start=tmp_path)) == {"team": "ml", "owner": "ana@example.com"}
