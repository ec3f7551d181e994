"""A registry that fails or does not answer exits 1, one the user must fix 2 (docs/cli.md's exit codes): every
registry error exited 2, a storage that did not answer too."""

from __future__ import annotations

import errno
import json

import pytest

from cli_runner import run_cli


class EndpointConnectionError(Exception):  # botocore's name for an S3 endpoint not answering
    pass


class ClientConnectorError(OSError):  # aiohttp's (gcsfs): an OSError subclass, no errno
    pass


class NoCredentialsError(Exception):  # botocore's: the user's to fix
    pass


def _failing_fs(exc: BaseException):
    from fsspec.spec import AbstractFileSystem

    class Failing(AbstractFileSystem):
        protocol = "kpfailing"

        def ls(self, path, detail=True, **kwargs):
            raise exc

        def info(self, path, **kwargs):
            raise exc

        def _open(self, path, mode="rb", **kwargs):
            raise exc

    return Failing


@pytest.mark.parametrize(("exc", "exit_code"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), 1),
    (TimeoutError("timed out"), 1),
    (EndpointConnectionError('Could not connect to the endpoint URL: "http://127.0.0.1:1/"'), 1),
    (ClientConnectorError("Cannot connect to host storage.googleapis.com:443"), 1),
    (OSError(errno.EIO, "Input/output error"), 1),  # the storage failed (storage_failed)
    (NoCredentialsError("Unable to locate credentials"), 2),
    (PermissionError(errno.EACCES, "Permission denied"), 2),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v))
def test_a_registry_that_does_not_answer_exits_1_and_one_the_user_must_fix_2(capsys, monkeypatch, exc, exit_code):
    import fsspec

    monkeypatch.delenv("KUBEPIPE_REGISTRY", raising=False)
    fsspec.register_implementation("kpfailing", _failing_fs(exc), clobber=True)
    code, out, err = run_cli(capsys, "models", "list", "--registry", "kpfailing://bucket/reg", "--format", "json")
    said = json.loads(err.strip().splitlines()[-1])["error"]
    assert (code, said["exit_code"]) == (exit_code, exit_code), err
    assert "kpfailing://bucket/reg" in said["message"] and "internal error" not in said["message"], err


def test_a_service_failure_is_told_from_a_refusal_through_its_cause():
    # api_core's RetryError (a retry that gave up on a connection error) names it as `cause`, with no status
    from kubepipe.clients import service_failed

    class RetryError(Exception):
        def __init__(self, cause):
            super().__init__("Deadline of 120.0s exceeded")
            self.cause = cause

    class Forbidden(Exception):
        code = 403

    assert service_failed(RetryError(ConnectionResetError()))
    assert not service_failed(RetryError(Forbidden()))
    assert not service_failed(ValueError("bad bucket name"))
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = TimeoutError()
    assert service_failed(wrapped)
