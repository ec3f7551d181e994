"""Property-based fuzzing of the loader: any input ends in a Pipeline or a ValidationError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubepipe.errors import ValidationError
from kubepipe.spec import load_pipeline_text

VALID = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: fuzz}
params:
  n: {type: int, default: 3}
steps:
  a:
    component: ops:say
    with: {message: hi, value: "${params.n}"}
    when: "${params.n} > 2"
schedule: {cron: "0 3 * * 1"}
"""

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=20)


def _load(text: str) -> None:
    try:
        load_pipeline_text(text, "fuzz.yaml", environ={})
    except ValidationError as exc:
        assert exc.issues, "a ValidationError always carries issues"
        for issue in exc.issues:
            assert issue.message and issue.format()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text):
    _load(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.text(max_size=8))
def test_mutated_valid_pipeline_never_crashes(pos, insert):
    _load(VALID[:pos] + insert + VALID[pos + 1:])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_yaml_structure_never_crashes(data):
    import json

    _load(json.dumps({"apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "x"},
                      "steps": data}, default=str))


anchors = st.lists(st.sampled_from(["&a ", "*a", "&b ", "*b", "[*a, *a]", "{k: *a}", "<<: *a"]), max_size=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(VALID) - 1), anchors)
def test_anchors_and_aliases_never_crash(pos, parts):
    _load(VALID[:pos] + " ".join(parts) + VALID[pos:])
