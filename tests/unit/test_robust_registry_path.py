"""`kubepipe models list --registry file:///a/regular/file` is an error, not "no models"."""

from __future__ import annotations

import pytest

from kubepipe.components.registry import Registry
from kubepipe.components.registry.version import RegistryError
from cli_runner import run_cli_text as _run




@pytest.mark.parametrize("form", ["file://{}", "{}"])
def test_registry_path_is_a_file(tmp_path, capsys, monkeypatch, form):
    monkeypatch.setenv("COLUMNS", "200")
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    code, text = _run(capsys, "models", "list", "--registry", form.format(f))
    assert code == 2, text
    assert "notes.txt" in text and "is a file, not a folder" in text and "no models" not in text


def test_registry_below_a_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(RegistryError, match=r"its parent .*notes\.txt is a file, not a folder"):
        Registry(f"file://{f}/registry")


def test_new_registry_folder_still_works(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, text = _run(capsys, "models", "list", "--registry", f"file://{tmp_path}/fresh/registry")
    assert code == 0 and "no models" in text.lower()
