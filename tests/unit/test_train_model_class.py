"""A user model class's constructor: read as it is called, its hyperparameters as the types it declares."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.training.models import resolve_model_class  # noqa: E402


def test_a_wrong_constructor_is_shown_as_it_is_called(tmp_path, monkeypatch):
    (tmp_path / "wrong_models.py").write_text("class Wrong:\n    def __init__(self, n_classes, *, width=2):\n"
                                              "        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError) as err:
        resolve_model_class("wrong_models:Wrong")
    assert "constructor is Wrong(n_classes, *, width=2); a kubepipe model needs __init__(self, num_labels" in str(
        err.value)  # was Wrong(self, n_classes, ...): no caller passes `self`

