"""`kubepipe init` in a team's existing repository: what it keeps, what it refuses, what it leaves out of git."""

from __future__ import annotations

import pytest

from kubepipe.errors import UserError
from kubepipe.scaffold import init_project

APP_CONFIG = "database:\n  host: localhost\nport: 5432\n"


def test_init_refuses_a_configs_file_of_the_repository_that_kubepipe_would_read_as_its_profile(tmp_path):
    """A repository's own configs/local.yaml (an app's settings) was 'kept' as the local profile, and the
    starter's first validate failed with `unknown key database`; the hint to pass --force would overwrite it."""
    (tmp_path / "configs").mkdir()
    app = tmp_path / "configs" / "local.yaml"
    app.write_text(APP_CONFIG, encoding="utf-8")
    with pytest.raises(UserError) as err:
        init_project(tmp_path, "fraud")
    message = str(err.value)
    assert str(app) in message and "not a kubepipe target profile" in message, message
    assert "kubepipe init ml" in message, message  # says what to do: a folder of its own
    assert app.read_text(encoding="utf-8") == APP_CONFIG
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["configs", "local.yaml"]  # nothing written


@pytest.mark.parametrize("profile", ["target: local\nruntime_image: python:3.11-slim\n",
                                     "# mine\nruntime_image: python:3.11-slim\nstate_dir: /var/kp\n", ""])
def test_init_keeps_a_profile_the_project_already_has(tmp_path, profile):
    (tmp_path / "configs").mkdir()
    mine = tmp_path / "configs" / "local.yaml"
    mine.write_text(profile, encoding="utf-8")
    written = init_project(tmp_path, "second")
    assert mine not in written and mine.read_text(encoding="utf-8") == profile
