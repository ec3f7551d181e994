"""A real S3 API on loopback for tests: moto in server mode, in its own process.

moto's stock server is threaded, and its PutObject checks `If-None-Match: *` and then
writes in two steps, so two threads can both pass the check. Real S3 evaluates the
precondition atomically per key. Served one request at a time (werkzeug's
single-threaded server, HTTP/1.0), every request is atomic, so moto behaves like S3
for compare-and-swap and any lost update is the client's fault, not the fake's.

`moto_s3()` starts it on 127.0.0.1 port 0, points botocore at it through
`AWS_ENDPOINT_URL_S3` plus dummy credentials (inherited by forked workers), creates
one bucket, and stops the server by pid in `finally`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid

__all__ = ["moto_s3"]

_SERVER = r"""
import sys
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

srv = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=False,
                  request_handler=MotoRequestHandler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""


def _clear_s3fs_cache() -> None:
    """s3fs caches filesystem instances, each bound to the endpoint it first saw."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@contextlib.contextmanager
def moto_s3(monkeypatch, bucket: str = ""):
    """Yield (endpoint_url, bucket); the environment points every S3 client at the server."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE,  # nosec B603 - our own script
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"moto server did not start (printed {line!r}, exit {proc.poll()})")
        url = f"http://127.0.0.1:{line}"
        for key, value in {"AWS_ENDPOINT_URL_S3": url, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(key, raising=False)
        _clear_s3fs_cache()
        import boto3

        bucket = bucket or f"kp-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
        yield url, bucket
    finally:
        _clear_s3fs_cache()
        if proc.poll() is None:
            os.kill(proc.pid, 15)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, 9)
                proc.wait(10)
        proc.stdout.close()
