"""`retries: {factor: .inf}` passed validate, and compile stopped with an internal error (protobuf's ParseError:
'Failed to parse backoff_factor field: Couldn't parse Infinity'): a factor is a finite number."""

import pytest

import kubepipe
from kubepipe.errors import ValidationError

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: demo}
steps:
  a:
    component: ops:say
    with: {message: hi}
    retries: {count: 2, factor: FACTOR}
"""


@pytest.mark.parametrize("factor", [".inf", "'inf'", ".nan", "'Infinity'", "1e400"])
def test_a_retry_factor_that_is_no_finite_number_is_said_where_it_is_written(tmp_path, factor):
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("FACTOR", factor))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "p.yaml")
    [issue] = exc.value.issues
    assert (issue.path, issue.line) == ("steps.a.retries.factor", 8), issue
    assert "finite number" in issue.message, issue


def test_a_finite_factor_compiles(tmp_path):
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("FACTOR", "'1.5'"))
    kubepipe.compile(tmp_path / "p.yaml", out=tmp_path / "p.yaml.json")
    assert "1.5" in (tmp_path / "p.yaml.json").read_text()
