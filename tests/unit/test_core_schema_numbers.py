"""kubepipe.schema.json (what editors check) takes a number in quotes wherever validate reads one (decision 0003)."""

from __future__ import annotations

import typing

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st


def _number_fields():
    """(model, key, int or float) of every field of every pipeline section that takes a number and no text."""
    from kubepipe.spec import models

    out, todo = [], [models.Spec]
    while todo:
        model = todo.pop()
        todo += model.__subclasses__()
        for name, f in model.model_fields.items():
            kinds = models._kinds(f.annotation)
            if kinds & {int, float} and not kinds & {str, typing.Any, bool}:
                out.append((model, f.alias or name, int if int in kinds else float))
    return out


def _accepts(model, key: str):
    from kubepipe.spec.models import Pipeline
    from kubepipe.spec.schema import pipeline_schema

    schema = pipeline_schema()
    where = "#" if model is Pipeline else f"#/$defs/{model.__name__}"
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": f"{where}/properties/{key}"})
    return validator.is_valid


FIELDS = _number_fields()


def test_the_fields_are_found():
    names = {f"{m.__name__}.{k}" for m, k, _ in FIELDS}
    assert names >= {"StepDefaults.retries", "Step.retries", "Step.parallelism", "RetryPolicy.count",
                     "RetryPolicy.factor", "Gpu.count", "Schedule.max_concurrency", "Schedule.max_runs"}, names


@pytest.mark.parametrize(("model", "key", "kind"), FIELDS, ids=[f"{m.__name__}.{k}" for m, k, _ in FIELDS])
def test_every_number_field_takes_the_number_in_quotes_validate_reads(model, key, kind):
    # `retries: '3'` and `retries: ${env.RETRIES:-2}` pass validate; the schema said "not of type integer"
    from pydantic import TypeAdapter

    accepts = _accepts(model, key)
    for text in ("2", " 2 ", "+2", "2.0", "1_0", "${env.RETRIES:-2}", "${env.N}"):
        assert accepts(text), (model, key, text)
    assert accepts(2) and not accepts(True)
    for text in ("two", "2 retries", "", "2,5", "-", "${params.n}"):
        assert not accepts(text), (model, key, text)
        if "$" not in text:
            with pytest.raises(ValueError):
                TypeAdapter(kind).validate_python(text)


_NUMBERISH = st.text(alphabet="0123456789+-._eE \tinfINFtyan", max_size=12)


@given(_NUMBERISH, st.sampled_from([(m, k, kind) for m, k, kind in FIELDS]))
def test_whatever_text_validate_reads_as_a_number_the_schema_takes(text, field):
    """pydantic's lax reading (validate's) as the oracle: any text it reads as the field's number, in or out of the
    field's range (that is validate's to say), is taken by the schema."""
    from pydantic import TypeAdapter, ValidationError

    model, key, kind = field
    try:
        TypeAdapter(kind).validate_python(text)
    except ValidationError:
        return
    assert _accepts(model, key)(text), (model, key, text)
