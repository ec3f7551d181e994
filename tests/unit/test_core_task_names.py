"""A step's KFP task name: kubepipe spells kfp's rule itself (importing kfp cost `validate` ~1 s); kfp's own function
is the oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from kfp.dsl.utils import maybe_rename_for_k8s

from kubepipe.spec.models import task_name


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=30), st.from_regex(r"[A-Za-z0-9_.\- ]{0,20}", fullmatch=True)))
def test_task_name_is_kfp_s_rule(step):
    assert task_name(step) == maybe_rename_for_k8s(step)


def test_the_known_spellings():
    assert [task_name(s) for s in ("load_holdout", "Train-Model", "a__b--c", "_x_", "İstanbul", "ẞ")] == [
        maybe_rename_for_k8s(s) for s in ("load_holdout", "Train-Model", "a__b--c", "_x_", "İstanbul", "ẞ")]


def test_validating_builtin_steps_does_not_import_kfp():
    """kfp's package imports its client and the Kubernetes one (~1 s): the flagship, built-in components only, is
    validated without it."""
    flagship = Path(__file__).resolve().parents[2] / "pipelines" / "merchant-categorizer.yaml"
    code = ("import sys, kubepipe; kubepipe.validate(sys.argv[1], 'local'); "
            "print(sorted(m for m in sys.modules if m == 'kfp' or m.startswith('kfp.')))")
    out = subprocess.run([sys.executable, "-c", code, str(flagship)], capture_output=True, text=True,
                         cwd=flagship.parent, check=False, env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
