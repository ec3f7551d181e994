"""kubepipe.util's small rules, and the places that read numbers through them."""

from __future__ import annotations

import pytest

from kubepipe.util import whole_number


@pytest.mark.parametrize("text, expected", [("3", 3), ("042", 42), (7, 7), ("²", None), ("٣", None), ("", None),
                                            ("-1", None), ("1.0", None), (" 3", None), ("v3", None)])
def test_whole_numbers_are_ascii_digits_only(text, expected):
    assert whole_number(text) == expected


def test_a_status_or_version_written_in_other_digits_is_no_number_and_no_crash(tmp_path):
    # '²'.isdigit() is true and int('²') raises: the API error handler and live-quality's registry lookup crashed
    from kubepipe.clients import _status_code
    from kubepipe.components.monitoring.steps import _offline
    from kubepipe.components.registry import Registry

    assert (_status_code("404"), _status_code(503), _status_code("²"), _status_code(True)) == (404, 503, None, None)
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(str(model), name="clf", metrics={"accuracy": 0.9})
    assert _offline(reg.store.uri(), "clf", ["²", "1"]) == {"1": {"accuracy": 0.9}}


def test_first_line_keeps_the_detail_a_heading_line_announces():
    """botocore's 'Parameter validation failed:' has its reason on the next line: `--registry s3://user@b/reg`
    said 'cannot reach it: Parameter validation failed:;' and nothing about the bucket name."""
    from kubepipe.util import first_line

    exc = ValueError('Parameter validation failed:\nInvalid bucket name "user@b": Bucket name must match\nmore')
    assert first_line(exc) == 'Parameter validation failed: Invalid bucket name "user@b": Bucket name must match'
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("ends with:")) == "ends with:"
    assert first_line(ValueError("  ")) == "ValueError"
