"""Which key and variable names say their value is a credential."""

from __future__ import annotations

import pytest

from kubepipe.secrets import check_profile_secrets, is_secret_name, redact_text


@pytest.mark.parametrize("name", ["DB_PASS", "SMTP_PASS", "MYSQL_PWD", "pass", "dbPass", "redis-pass"])
def test_a_pass_or_pwd_last_names_a_password(name):
    # DB_PASS=hunter2hunter2 in a step's output went to run.log as it was, and `db_pass: ...` passed validate
    assert is_secret_name(name)
    assert redact_text(f"connect with {name}=PlainPaSs99 failed") == f"connect with {name}=<redacted> failed"
    assert check_profile_secrets({name: "PlainPaSs99"})


@pytest.mark.parametrize("name", ["pass_rate", "pass_through", "first_pass", "two_pass", "bypass", "passes",
                                  "gate_passed", "OLDPWD", "db_pass_file"])
def test_a_pass_that_is_no_password_is_not_one(name):
    assert not is_secret_name(name) and redact_text(f"{name}=fastmode1") == f"{name}=fastmode1"


def test_the_working_directory_is_not_hidden(monkeypatch):
    monkeypatch.setenv("PWD", "/home/ana/projects/churn")
    monkeypatch.setenv("DB_PASS", "PlainPaSs99")
    assert redact_text("in /home/ana/projects/churn: login PlainPaSs99 refused") == (
        "in /home/ana/projects/churn: login <redacted> refused")
