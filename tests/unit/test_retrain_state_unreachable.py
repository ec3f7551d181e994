"""A state dir on an object store that cannot be reached (no credentials) is said naming `state_dir`."""

from __future__ import annotations

import pytest
from cli_runner import run_cli

pytest.importorskip("s3fs")


def test_retrain_resume_without_credentials_for_an_s3_state_dir_names_the_state_dir(tmp_path, capsys, monkeypatch):
    """It was 'internal error: NoCredentialsError: Unable to locate credentials' (botocore's, no OSError)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.chdir(tmp_path)
    code, _out, err = run_cli(capsys, "retrain", "resume", "train.yaml", "--home", tmp_path / ".kubepipe",
                              "--set", "state_dir=s3://no-such-bucket/state")
    text = " ".join(err.split())
    assert code == 2 and "internal error" not in text, text
    assert ("kubepipe retrain resume: cannot reach the state dir at s3://no-such-bucket/state/retrain/train/"
            "triggers.jsonl: Unable to locate credentials; check `state_dir`") in text
