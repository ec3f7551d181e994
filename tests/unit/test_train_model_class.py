"""A user model class's constructor: read as it is called, its hyperparameters as the types it declares."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.training.models import build_model, resolve_model_class  # noqa: E402

SPEC = {"encoding": "tabular", "num_features": 3}


def test_a_wrong_constructor_is_shown_as_it_is_called(tmp_path, monkeypatch):
    (tmp_path / "wrong_models.py").write_text("class Wrong:\n    def __init__(self, n_classes, *, width=2):\n"
                                              "        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError) as err:
        resolve_model_class("wrong_models:Wrong")
    assert "constructor is Wrong(n_classes, *, width=2); a kubepipe model needs __init__(self, num_labels" in str(
        err.value)  # was Wrong(self, n_classes, ...): no caller passes `self`


def test_future_annotations_give_the_declared_types():
    """`hidden: int | None` under `from __future__ import annotations` reached as_kind as the text 'int | None',
    so KFP's 64.0 stayed a float (an nn.Linear(3, 64.0) fails; a user's range(hidden) too)."""
    cls = resolve_model_class("annotated_models:FutureModel")
    model = build_model(cls, 2, SPEC, {"hidden": 64.0, "layers": "2.0", "scale": "0.5", "mixed": 3.0, "flag": "true"})
    assert model.kwargs == {"hidden": 64, "layers": 2, "scale": 0.5, "mixed": 3.0, "flag": True}
    assert type(model.kwargs["hidden"]) is int and type(model.kwargs["layers"]) is int
    assert build_model(cls, 2, SPEC, {"hidden": None}).kwargs["hidden"] is None
    assert build_model(cls, 2, SPEC, {"hidden": 64.5}).kwargs["hidden"] == 64.5  # not whole: the class's own check


def test_annotations_that_cannot_be_resolved_are_read_as_text():
    cls = resolve_model_class("annotated_models:UnresolvableModel")
    model = build_model(cls, 2, SPEC, {"hidden": 64.0, "widths": [8.0]})
    assert model.kwargs == {"hidden": 64, "widths": [8.0]} and type(model.kwargs["hidden"]) is int
