"""`kubepipe models list --registry file:///a/regular/file` is an error, not "no models"."""

from __future__ import annotations

import logging

import pytest

from kubepipe.components.registry import Registry
from kubepipe.components.registry.version import RegistryError
from cli_runner import run_cli, run_cli_text as _run




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


def test_registry_of_an_unknown_scheme_is_a_user_error(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, text = _run(capsys, "models", "list", "--registry", "foo://bucket/reg")
    assert code == 2, text  # was `internal error: ValueError: Protocol not known: foo`
    assert "registry foo://bucket/reg: unsupported location" in text and "internal error" not in text


def test_a_registry_whose_filesystem_connects_when_made_says_it_cannot_reach_it(capsys, monkeypatch):
    """fsspec's ftp:// connects as it is made, outside the reads that said "cannot reach it": a refused connection
    (or a host no DNS knows) was `internal error: ConnectionRefusedError` (`gaierror`)."""
    import socket

    monkeypatch.setenv("COLUMNS", "250")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, text = _run(capsys, "models", "list", "--registry", f"ftp://127.0.0.1:{port}/reg")
    assert code == 1, text  # no answer: a retry may pass, as for gs:// and s3://
    assert f"registry ftp://127.0.0.1:{port}/reg: cannot reach it: " in text and "Connection refused" in text
    assert "check the URI (--registry), your credentials and the network" in text and "internal error" not in text


class _Unreachable(Exception):
    """What a cloud backend raises without credentials or network (NoCredentialsError, ClientConnectorError)."""


def _unreachable_fs():
    from fsspec.spec import AbstractFileSystem

    class Unreachable(AbstractFileSystem):
        protocol = "kpunreachable"

        def ls(self, path, detail=True, **kwargs):
            try:
                raise _Unreachable("Unable to locate credentials")
            except _Unreachable as exc:  # as gcsfs does: every failed request logged with its traceback
                logging.getLogger("kpunreachable.retry").exception("_request out of retries on exception: %s", exc)
                raise

        def _open(self, path, mode="rb", **kwargs):
            raise _Unreachable("Unable to locate credentials")

        def info(self, path, **kwargs):
            raise _Unreachable("Unable to locate credentials")

    return Unreachable


def test_unreachable_registry_names_it_and_says_what_to_check(capsys, monkeypatch):
    import fsspec

    monkeypatch.setenv("COLUMNS", "200")
    fsspec.register_implementation("kpunreachable", _unreachable_fs(), clobber=True)
    code, text = _run(capsys, "models", "list", "--registry", "kpunreachable://bucket/reg")
    assert code == 2, text  # was `internal error: NoCredentialsError: ...`
    assert "registry kpunreachable://bucket/reg: cannot reach it: Unable to locate credentials" in text
    assert "credentials and the network" in text and "internal error" not in text
    with pytest.raises(RegistryError, match="cannot reach it") as exc:  # writes too, and a retry may help
        Registry("kpunreachable://bucket/reg").promote("m", 1, reason="x")
    assert exc.value.retryable


def test_a_dependency_s_logged_traceback_shows_only_with_verbose(capsys):
    import fsspec

    fsspec.register_implementation("kpunreachable", _unreachable_fs(), clobber=True)
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()  # as in a shell: no handler but Python's last resort (pytest adds its own)
    original = logging.lastResort
    try:
        code, out, err = run_cli(capsys, "models", "list", "--registry", "kpunreachable://bucket/reg")
        assert code == 2 and "_request out of retries on exception: Unable to locate credentials" in err
        assert "Traceback" not in err  # the library's log line stays, its traceback goes
        assert logging.lastResort is original  # a program running the CLI in-process keeps its own
        code, out, err = run_cli(capsys, "models", "list", "-v", "--registry", "kpunreachable://bucket/reg")
        assert code == 2 and "Traceback" in err
        assert logging.lastResort is original
    finally:
        root.handlers[:] = saved
        logging.lastResort = original


def test_the_cli_leaves_logging_s_last_resort_as_it_found_it(capsys):
    original = logging.lastResort
    code, out, err = run_cli(capsys, "--version")  # a command that exits early (typer.Exit)
    assert code == 0 and out.startswith("kubepipe ")
    assert logging.lastResort is original
    code, out, err = run_cli(capsys, "no-such-command")  # and one that fails
    assert code == 2 and logging.lastResort is original


def test_unreachable_registry_from_a_profile_names_the_profile_line(capsys, monkeypatch, tmp_path):
    """A promote through a profile's registry_uri said 'check the URI (--registry / KUBEPIPE_REGISTRY)', two sources
    the user had not given: it names the profile file's line, or the --set that gave the URI."""
    import fsspec

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KUBEPIPE_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)
    fsspec.register_implementation("kpunreachable", _unreachable_fs(), clobber=True)
    prof = tmp_path / "configs" / "local.yaml"
    prof.parent.mkdir()
    prof.write_text("target: local\n# the team's registry\nregistry_uri: kpunreachable://bucket/reg\n")
    code, text = _run(capsys, "models", "promote", "m", "1", "--reason", "x", "--profile", str(prof))
    assert code == 2 and "registry kpunreachable://bucket/reg: cannot reach it" in text, text
    assert f"check the URI (registry_uri in {prof}:3:1), your credentials" in text, text
    assert "KUBEPIPE_REGISTRY" not in text
    code, text = _run(capsys, "models", "list", "m")  # the local profile's, found above the working directory
    assert code == 2 and "(registry_uri in configs/local.yaml:3:1)" in text.replace(str(tmp_path) + "/", ""), text
    code, text = _run(capsys, "models", "rollback", "m", "--set", "registry_uri=kpunreachable://other/reg")
    assert code == 2 and "check the URI (--set registry_uri), your credentials" in text, text
    code, text = _run(capsys, "models", "list", "m", "--registry", "kpunreachable://bucket/reg")
    assert code == 2 and "check the URI (--registry), your credentials" in text, text
