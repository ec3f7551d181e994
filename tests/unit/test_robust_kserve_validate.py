"""`kubepipe kserve validate FILE` on files that are not YAML text."""

from __future__ import annotations

import pytest

from cli_runner import run_cli_text as _run




@pytest.mark.parametrize("content,expect", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a UTF-8 text file"),
    (b"\xff\xfe\xfa binary", "not a UTF-8 text file"),
    (b"kind: InferenceService\nmetadata: {name: x\n", "not valid YAML"),
    (b"kind: InferenceService\x00\x01", "not valid YAML"),
])
def test_unreadable_file_is_exit_2_naming_it(tmp_path, capsys, monkeypatch, content, expect):
    monkeypatch.setenv("COLUMNS", "200")
    f = tmp_path / "model.bin"
    f.write_bytes(content)
    code, text = _run(capsys, "kserve", "validate", str(f))
    assert code == 2, text
    assert "model.bin" in text and expect in text and "Traceback" not in text and "internal error" not in text.lower()


def test_folder_and_missing_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, text = _run(capsys, "kserve", "validate", str(tmp_path))
    assert code == 2 and "is a folder" in text
    code, text = _run(capsys, "kserve", "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml" in text


def test_odd_metadata_is_not_a_crash(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    f = tmp_path / "isvc.yaml"
    f.write_text("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: [1, 2]\nspec: 5\n")
    code, text = _run(capsys, "kserve", "validate", str(f))
    assert code == 2 and "isvc.yaml" in text and "Traceback" not in text and "internal error" not in text.lower()
