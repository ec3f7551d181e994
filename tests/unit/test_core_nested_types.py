"""References inside a mapping or list: KFP passes their values as text, kubepipe's own components get
them typed again (components/kfp_values.py), and a list or mapping cannot sit inside another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import kubepipe
import kubepipe.components
from kubepipe.components.kfp_values import TYPES_KEY, tag, typed
from kubepipe.errors import ValidationError


def _as_kfp_sends(value, kind):
    """A leaf's text as KFP writes it into the mapping (seen with kfp.local 2.x: 4 -> "4.0", True -> "true")."""
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("int", "float"):
        return str(float(value))
    return value


leaves = st.one_of(st.tuples(st.just("int"), st.integers(-10**6, 10**6)),
                   st.tuples(st.just("float"), st.floats(-1e6, 1e6, allow_nan=False)),
                   st.tuples(st.just("bool"), st.booleans()),
                   st.tuples(st.just("str"), st.text(max_size=8)),
                   st.tuples(st.just("literal"), st.integers(0, 9)))
trees = st.recursive(leaves, lambda kids: st.one_of(st.lists(kids, min_size=1, max_size=4),
                                                    st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5),
                                                                    kids, min_size=1, max_size=4)), max_leaves=12)


def _split(tree, path=()):
    """(the value the component should see, what KFP sends, {path: declared type} of the reference leaves)."""
    if isinstance(tree, tuple):
        kind, v = tree
        if kind == "literal":
            return v, float(v), {}  # a literal number crosses KFP's Struct as a float; no tag
        return v, _as_kfp_sends(v, kind), {path: kind}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    want, sent, types = ({}, {}, {}) if isinstance(tree, dict) else ([], [], {})
    for k, sub in items:
        w, s, t = _split(sub, path + (k,))
        if isinstance(tree, dict):
            want[k], sent[k] = w, s
        else:
            want.append(w)
            sent.append(s)
        types.update(t)
    return want, sent, types


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.lists(trees, min_size=1, max_size=4),
                 st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), trees, min_size=1, max_size=4)))
def test_tagged_leaves_come_back_with_their_declared_type(tree):
    want, sent, types = _split(tree)
    # through JSON as KFP's Struct carries it (list indices in the tag must survive that too)
    received = json.loads(json.dumps(tag(sent, types)))
    got = typed(received)
    for path, kind in types.items():
        node_w, node_g = want, got
        for key in path:
            node_w, node_g = node_w[key], node_g[key]
        assert type(node_g).__name__ == ("float" if kind == "float" else kind) and node_g == pytest.approx(node_w)
    assert TYPES_KEY not in json.dumps(got)
    assert typed(sent) == sent  # untagged: as given


def test_text_that_is_not_its_type_stays_text_for_the_components_check_to_name():
    assert typed({"n": "soon", TYPES_KEY: {'["n"]': "int"}}) == {"n": "soon"}
    assert typed({"n": "2.5", TYPES_KEY: {'["n"]': "int"}}) == {"n": "2.5"}
    assert typed({"b": "yes", TYPES_KEY: {'["b"]': "bool"}}) == {"b": "yes"}
    assert typed({"n": 3, TYPES_KEY: {'["gone"]': "int", "not json": "int"}}) == {"n": 3}


def _write(tmp_path, steps: dict, params: dict) -> str:
    doc = {"apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "nested-types"},
           "params": params, "steps": steps}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_compile_tags_builtin_settings_and_leaves_foreign_components_as_kfp_passes_them(in_tmp):
    src = _write(in_tmp, {
        "load": {"component": "load-data", "with": {"source": "data.csv"}},
        "train": {"component": "train-torch", "inputs": {"dataset": "${steps.load.outputs.dataset}"},
                  "with": {"architecture": "tabular-mlp", "label_column": "y",
                           "hyperparameters": {"hidden": "${params.hidden}", "warmup_fraction": "${params.warm}"}}},
        "echo": {"component": "ops:leaf_types", "with": {"settings": {"n": "${params.hidden}"}}}},
        {"hidden": {"type": "int", "default": 16}, "warm": {"type": "float", "default": 0.1}})
    (in_tmp / "data.csv").write_text("a,y\n1,0\n2,1\n")
    kubepipe.compile(src, "local", out=in_tmp / "ir.yaml")
    ir = yaml.safe_load((in_tmp / "ir.yaml").read_text())
    tasks = ir["root"]["dag"]["tasks"]
    hp = tasks["train"]["inputs"]["parameters"]["hyperparameters"]["runtimeValue"]["constant"]
    assert hp[TYPES_KEY] == {'["hidden"]': "int", '["warmup_fraction"]': "float"}
    assert TYPES_KEY not in json.dumps(tasks["echo"]["inputs"]["parameters"])


@pytest.mark.parametrize("param,where", [({"type": "list", "default": [1, 2]}, "params.p"),
                                         ({"type": "dict", "default": {"a": 1}}, "params.p")])
def test_a_list_or_mapping_inside_a_mapping_is_refused_at_validate(in_tmp, param, where):
    src = _write(in_tmp, {"load": {"component": "load-data", "with": {"source": "data.csv"}},
                          "drift": {"component": "detect-drift",
                                    "inputs": {"reference": "${steps.load.outputs.dataset}",
                                               "data": "${steps.load.outputs.dataset}"},
                                    "with": {"column_map": {"x": "${params.p}"}}}}, {"p": param})
    (in_tmp / "data.csv").write_text("a\n1\n")
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(src)
    text = str(err.value)
    assert "steps.drift.with.column_map" in text and f"`${{{where}}}` is a {param['type']}" in text
    assert "cannot sit inside a mapping or list" in text and "whole value of an input" in text


def test_every_builtin_shim_types_its_mapping_and_list_settings_again():
    """A new dict/list input of a built-in must go through `typed(...)`, or its tagged values arrive
    with the reserved key inside (and their text, not their types)."""
    import importlib

    from kubepipe.components.builtins import BUILTINS

    lock = json.loads((Path(kubepipe.components.__file__).parent / "builtins.lock.json").read_text())
    missing = []
    for name, entry in BUILTINS.items():
        module, attr = entry.ref.split(":")
        source = getattr(importlib.import_module(module), attr).component_spec.implementation.container.command[-1]
        for port in lock[name]["inputs"].values():
            if port["kind"] == "parameter" and port["type"] in ("dict", "list") and not port["name"].startswith("ctx_"):
                if f"typed({port['name']})" not in source:
                    missing.append(f"{name}.{port['name']}")
    assert missing == []


def test_loop_item_fields_are_text_and_cannot_be_nested(in_tmp):
    src = _write(in_tmp, {"say": {"component": "ops:say", "foreach": [{"m": "a", "n": 3}],
                                  "with": {"message": "${item.m}", "value": "${item.n}"}},
                          "echo": {"component": "ops:leaf_types", "foreach": [{"lr": 0.1}],
                                   "with": {"settings": {"lr": "${item.lr}"}}}}, {})
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(src)
    issues = {i.path: i for i in err.value.issues}
    assert set(issues) == {"steps.say.with.value", "steps.echo.with.settings.lr"}  # no "missing input" besides
    assert "`${item.n}` is text" in issues["steps.say.with.value"].message
    assert "cannot sit inside a mapping or list" in issues["steps.echo.with.settings.lr"].message


def test_a_loop_item_inside_a_builtin_setting_is_tagged_with_the_literal_list_s_type(in_tmp):
    (in_tmp / "data.csv").write_text("a,y\n1,0\n2,1\n")
    src = _write(in_tmp, {
        "load": {"component": "load-data", "with": {"source": "data.csv"}},
        "train": {"component": "train-torch", "inputs": {"dataset": "${steps.load.outputs.dataset}"},
                  "foreach": [8, 16],
                  "with": {"architecture": "tabular-mlp", "label_column": "y", "hyperparameters": {"hidden": "${item}"}}}},
        {})
    kubepipe.compile(src, "local", out=in_tmp / "ir.yaml")
    tags = []

    def walk(node):
        if isinstance(node, dict):
            if TYPES_KEY in node:
                tags.append(node[TYPES_KEY])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((in_tmp / "ir.yaml").read_text()))
    assert tags == [{'["hidden"]': "int"}]


def test_every_bad_reference_inside_a_mapping_or_list_is_said_at_its_own_item(in_tmp):
    """Only the first was said, at the input: `settings` with `${params.nope}` and `${steps.zz.outputs.q}` got
    'steps.echo.with.settings: unknown param `nope`' alone; fixing it revealed the next."""
    src = _write(in_tmp, {"echo": {"component": "ops:leaf_types", "with": {"settings": {
        "a": ["${params.n}", "${params.nope}"], "b": "${steps.zz.outputs.q}", "c": "${params.xs}"}}}},
        {"n": {"type": "int", "default": 1}, "xs": {"type": "list", "default": [1]}})
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(src)
    got = {i.path: i.message for i in err.value.issues}
    assert got == {"steps.echo.with.settings.a[1]": "unknown param `nope`",
                   "steps.echo.with.settings.b": "unknown step `zz`",
                   "steps.echo.with.settings.c": "`${params.xs}` is a list; a list cannot sit inside a mapping or list "
                                                 "(KFP passes nested values as text)"}
    assert all(i.line is not None and i.col is not None for i in err.value.issues)
