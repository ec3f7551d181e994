"""notify records the run end on an s3:// state dir (moto S3 server on loopback)."""

import json

import pytest

from kubepipe.components.notify.notify import notify_run_end

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
from s3_moto import moto_s3  # noqa: E402

pytestmark = pytest.mark.contract


def test_notify_records_on_s3(monkeypatch):
    import s3fs

    with moto_s3(monkeypatch) as (_url, bucket):
        rec = notify_run_end(state="SUCCEEDED", pipeline="p", run_id="p-9", message="ok",
                             state_dir=f"s3://{bucket}/state")
        fs = s3fs.S3FileSystem()
        files = fs.find(f"{bucket}/state/notifications")
        assert [f"s3://{f}" for f in files] == [rec["log"]]
        assert json.loads(fs.cat_file(files[0]))["run_id"] == "p-9"
