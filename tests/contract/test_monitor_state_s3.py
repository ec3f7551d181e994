"""A monitor with read-only access to the prediction log on S3 (moto server on loopback, IAM enforced): its window
records go to `state_uri`, and where it cannot write the default place the error names it and says to set state_uri."""

from __future__ import annotations

import calendar
import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
pytest.importorskip("pyarrow.parquet")
from s3_moto import moto_s3  # noqa: E402  (pytest puts tests/contract on sys.path)

from kubepipe.components.data.load import load_to_artifact  # noqa: E402
from kubepipe.components.errors import DataError  # noqa: E402
from kubepipe.components.monitoring.predlog import PredictionLog, Record  # noqa: E402

pytestmark = pytest.mark.contract

T0 = calendar.timegm((2026, 3, 16, 0, 0, 0))
END1, END2 = T0 + 7200, T0 + 10800


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(iam, name: str, statements: list[dict]) -> dict:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def _as(monkeypatch, creds: dict) -> None:
    import s3fs

    for k, v in creds.items():
        monkeypatch.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """A log bucket the monitor may only read, a state bucket it may write; IAM enforced from here on."""
    import boto3
    import requests

    with moto_s3(monkeypatch) as (url, bucket):
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket="monitor-state")
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1")
        arn = f"arn:aws:s3:::{bucket}"
        writer = _user(iam, "serving", [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
        reader = _user(iam, "monitor", [
            {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": [arn, f"{arn}/*"]},
            {"Effect": "Allow", "Action": "s3:*",
             "Resource": ["arn:aws:s3:::monitor-state", "arn:aws:s3:::monitor-state/*"]}])
        assert requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10).ok  # enforce IAM from now
        try:
            yield SimpleNamespace(url=url, sink=f"s3://{bucket}/log", bucket=bucket, writer=writer, reader=reader,
                                  local=tmp_path / "log")
        finally:
            requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10)


def _write(s3, monkeypatch, rows) -> None:
    """The serving side: parts written locally, uploaded with the writer's credential."""
    import boto3

    before = set(s3.local.rglob("*.parquet"))
    plog = PredictionLog(str(s3.local), model="m", version="1", input_columns=("description",), flush_s=3600)
    plog.start()
    for rid, ts in rows:
        assert plog.offer(Record(rid, ts, "v1", 1.0, ["x"], ["a"], [0.5]))
    plog.close()
    client = boto3.client("s3", endpoint_url=s3.url, aws_access_key_id=s3.writer["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3.writer["AWS_SECRET_ACCESS_KEY"])
    for part in sorted(set(s3.local.rglob("*.parquet")) - before):
        client.upload_file(str(part), s3.bucket, f"log/{part.relative_to(s3.local).as_posix()}")


def _read(tmp: Path, s3, end: float, **kw):
    import pandas as pd

    art = SimpleNamespace(path=str(tmp / f"w-{end}.parquet"), metadata={})
    load_to_artifact(art, "predictions:m", predictions_uri=s3.sink, time_column="timestamp", window="1h",
                     as_of=_iso(end), allow_empty=True, **kw)
    return sorted(pd.read_parquet(art.path)["request_id"]), art.metadata


def test_a_read_only_monitor_keeps_its_records_at_state_uri(s3, monkeypatch, tmp_path):
    import s3fs

    _write(s3, monkeypatch, [("a", END1 - 60)])
    _as(monkeypatch, s3.reader)
    with pytest.raises(PermissionError):  # the monitor's credential cannot write the log's bucket
        s3fs.S3FileSystem().pipe(f"{s3.sink.removeprefix('s3://')}/probe", b"x")
    state = "s3://monitor-state/windows"
    assert _read(tmp_path, s3, END1, state_uri=state)[0] == ["a"]
    _write(s3, monkeypatch, [("late", END1 - 30), ("b", END2 - 60)])  # a server flushed after window 1 was read
    _as(monkeypatch, s3.reader)
    ids, meta = _read(tmp_path, s3, END2, state_uri=state)
    assert ids == ["b", "late"] and meta["late_rows"] == 1  # the record it read back from state_uri
    fs = s3fs.S3FileSystem()
    records = sorted(p.rsplit("/", 1)[1] for p in fs.find("monitor-state/windows/model=m"))
    assert records == ["20260316T020000.000000Z.json", "20260316T030000.000000Z.json"]
    import boto3

    client = boto3.client("s3", endpoint_url=s3.url, aws_access_key_id=s3.writer["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3.writer["AWS_SECRET_ACCESS_KEY"])
    assert client.list_objects_v2(Bucket=s3.bucket, Prefix="log/_windows")["KeyCount"] == 0  # none beside the log
    again, _ = _read(tmp_path, s3, END2, state_uri=state)  # read again: the same rows, from its own record
    assert again == ids


def test_a_monitor_that_cannot_write_beside_the_log_is_told_to_set_state_uri(s3, monkeypatch, tmp_path):
    _write(s3, monkeypatch, [("a", END1 - 60)])
    _as(monkeypatch, s3.reader)
    with pytest.raises(DataError) as err:
        _read(tmp_path, s3, END1)
    text = str(err.value)
    assert f"{s3.sink}/_windows/model=m/" in text and "state_uri" in text, text
    assert "cannot record the window" in text and "Traceback" not in text


@pytest.mark.parametrize("slack_s", [None, 0])
def test_a_late_part_into_an_older_hour_that_lost_one_is_counted_on_s3(s3, monkeypatch, tmp_path, slack_s):
    """S3's LastModified (whole seconds, on the store's clock) finds a part written into an older hour that also lost
    one (the same count). With no slack the cut is the listing's newest second itself: parts stamped that second are
    told apart by their names."""
    import time

    import boto3
    import s3fs

    from kubepipe.components.monitoring import too_late

    if slack_s is not None:
        monkeypatch.setattr(too_late, "SLACK_S", slack_s)
    state, ends = "s3://monitor-state/windows", [T0 + 7200 + k * 3600 for k in range(5)]
    _write(s3, monkeypatch, [("a", ends[0] + 60)])
    _write(s3, monkeypatch, [("b", ends[0] + 120)])
    _as(monkeypatch, s3.reader)
    for end in ends[:3]:
        _read(tmp_path, s3, end, state_uri=state, late_horizon_h=0)
    fs = s3fs.S3FileSystem()
    record = json.loads(fs.cat(sorted(fs.find("monitor-state/windows/model=m"))[-1]))
    assert abs(record["cut"] + (slack_s if slack_s is not None else too_late.SLACK_S) - time.time()) < 600
    client = boto3.client("s3", endpoint_url=s3.url, aws_access_key_id=s3.writer["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3.writer["AWS_SECRET_ACCESS_KEY"])
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3.bucket, Prefix="log/model=m/")["Contents"]
                  if "/hour=02/" in o["Key"])
    assert len(keys) == 2
    client.delete_object(Bucket=s3.bucket, Key=keys[0])  # compaction / retention of one part
    _write(s3, monkeypatch, [("too-late", ends[0] + 300)])
    _as(monkeypatch, s3.reader)
    ids, meta = _read(tmp_path, s3, ends[3], state_uri=state, late_horizon_h=0)
    assert ids == [] and meta["too_late_rows"] == 1 and meta["too_late_parts"] == 1
    ids, meta = _read(tmp_path, s3, ends[4], state_uri=state, late_horizon_h=0)
    assert ids == [] and "too_late_rows" not in meta  # counted once
