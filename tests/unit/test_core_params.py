"""`--param` values: one parser (kubepipe.spec.params) for local runs, submit and schedules.

Oracles: Python's own int/float/json readers for what must round-trip, the int64 range and
math.isfinite for what KFP can store.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubepipe.spec.params import ParamError, coerce_param, coerce_params

FIX = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIX))
from cli_runner import run_cli_text  # noqa: E402

INT64 = (-2**63, 2**63 - 1)


def exact(n: int) -> bool:
    """An int a pipeline carries as it is: within int64 and held exactly by a double (KFP's number)."""
    return INT64[0] <= n <= INT64[1] and int(float(n)) == n
pytestmark = pytest.mark.usefixtures("cli_words")  # the --param parser: its messages as the CLI says them


@given(st.integers(min_value=-2**70, max_value=2**70))
def test_int_text_round_trips_when_a_double_holds_it_and_is_refused_otherwise(n):
    if exact(n):
        assert coerce_param("epochs", str(n), "int") == n
        assert coerce_param("epochs", n, "int") == n
    else:
        with pytest.raises(ParamError, match=r"^--param epochs=.*(64-bit|would arrive as)") as exc:
            coerce_param("epochs", str(n), "int")
        assert exc.value.exit_code == 2


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_float_text_round_trips_when_finite(x):
    if math.isfinite(x):
        assert coerce_param("lr", repr(x), "float") == x
    else:
        with pytest.raises(ParamError, match=r"^--param lr=.*finite"):
            coerce_param("lr", repr(x), "float")


@given(st.recursive(st.none() | st.booleans() | st.integers(-2**66, 2**66) | st.floats() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
                    max_leaves=8))
def test_json_params_keep_only_what_kfp_can_store(value):
    def storable(v):
        if isinstance(v, float):
            return math.isfinite(v)
        if isinstance(v, int) and not isinstance(v, bool):
            return exact(v)
        if isinstance(v, dict):
            return all(storable(x) for x in v.values())
        if isinstance(v, list):
            return all(storable(x) for x in v)
        return True

    typ = "list" if isinstance(value, list) else "dict" if isinstance(value, dict) else None
    if typ is None:
        with pytest.raises(ParamError, match="expected list"):
            coerce_param("items", json.dumps(value), "list")
        return
    if storable(value):
        assert coerce_param("items", json.dumps(value), typ) == json.loads(json.dumps(value))
    else:
        with pytest.raises(ParamError, match="^--param items="):
            coerce_param("items", json.dumps(value), typ)


@pytest.mark.parametrize("value, typ", [
    ("3.0", "int"), ("three", "int"), (True, "int"), (2.0, "int"), ("maybe", "bool"), (1, "bool"),
    ("1e400", "float"), ("nan", "float"), (True, "float"), (3, "str"), ('{"a": 1}', "list"), ("[1]", "dict"),
    ("[1, NaN]", "list"), (10**400, "float"),
])
def test_type_mismatches_name_the_param(value, typ):
    with pytest.raises(ParamError, match=r"^--param p=") as exc:
        coerce_param("p", value, typ)
    assert exc.value.name == "p" and exc.value.reason.startswith("expected")


def test_numpy_scalars_from_the_api_are_the_python_values_they_hold_and_other_objects_are_refused_by_name():
    """kubepipe.run(params={'epochs': np.int64(3)}) raised 'TypeError: Object of type int64 is not JSON
    serializable' from inside the ParamError that refused it; a Path for a str param did the same."""
    np = pytest.importorskip("numpy")
    got = coerce_params({"n": np.int64(3), "lr": np.float32(0.5), "on": np.bool_(True), "xs": [np.int64(1)]},
                        {"n": "int", "lr": "float", "on": "bool", "xs": "list"})
    assert got == {"n": 3, "lr": 0.5, "on": True, "xs": [1]}
    assert [type(v) for v in got.values()] == [int, float, bool, list] and type(got["xs"][0]) is int
    with pytest.raises(ParamError, match=r"^--param n=3.5: expected int$"):
        coerce_param("n", np.float64(3.5), "int")
    with pytest.raises(ParamError, match=r"^--param uri=\"PosixPath\('data/x.csv'\)\": expected str$"):
        coerce_param("uri", Path("data/x.csv"), "str")


def test_a_numpy_string_is_a_str_as_a_numpy_number_is_a_number():
    """params={'country': df.country.unique()[0]} (an np.str_) passed as a str and kfp.local stopped the run before
    its first step: 'Constant argument inputs must be one of type [...] Got: np.str_('de')'."""
    np = pytest.importorskip("numpy")
    got = coerce_params({"who": np.str_("de"), "n": np.str_("3"), "xs": [np.str_("a")], "d": {np.str_("k"): 1}},
                        {"who": "str", "n": "int", "xs": "list", "d": "dict"})
    assert got == {"who": "de", "n": 3, "xs": ["a"], "d": {"k": 1}}
    assert type(got["who"]) is str and type(got["xs"][0]) is str and [type(k) for k in got["d"]] == [str]


def test_unknown_name_and_credentials_are_not_echoed():
    with pytest.raises(ParamError, match="has no param `epoch`; did you mean `epochs`"):
        coerce_params({"epoch": "3"}, {"epochs": "int"})
    with pytest.raises(ParamError) as exc:
        coerce_param("api_token", "secret-abc-123", "int")
    assert "secret-abc-123" not in str(exc.value)


NIGHTLY = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: nightly}
params:
  epochs: {type: int, default: 3}
  lr: {type: float, default: 0.1}
steps:
  say:
    component: ops:say
    with: {message: hi, value: "${params.epochs}"}
"""


@pytest.mark.parametrize("param, fragment", [
    ("epochs=99999999999999999999999", "--param epochs=99999999999999999999999: expected int"),
    ("lr=nan", "--param lr=nan: expected float"),
    ("epochs=2.5", "--param epochs=2.5: expected int"),
])
@pytest.mark.parametrize("command", ["run", "submit"])
def test_run_and_submit_refuse_the_same_values_with_exit_2(in_tmp, capsys, command, param, fragment):
    (in_tmp / "nightly.yaml").write_text(NIGHTLY)
    args = [command, "nightly.yaml", "--param", param]
    if command == "submit":  # refused before any request: the host does not exist
        args += ["--target", "kubeflow", "--set", "host=http://127.0.0.1:9", "--set", "pipeline_root=minio://b/r"]
    code, text = run_cli_text(capsys, *args)
    assert code == 2, text
    assert fragment in text and "Traceback" not in text


def test_a_json_param_with_a_key_twice_is_refused():
    """json kept the last `a` silently (the YAML loader refuses duplicate keys)."""
    with pytest.raises(ParamError) as exc:
        coerce_param("cfg", '{"a": 1, "b": {"c": 2, "c": 3}}', "dict")
    assert str(exc.value) == '--param cfg={"a": 1, "b": {"c": 2, "c": 3}}: expected JSON with each key once; `c` is ' \
                             "there twice"


@pytest.mark.parametrize("text, typ", [("٣", "int"), ("1_0", "int"), ("１", "int"), ("1_0.5", "float"),
                                       ("١٫٥", "float"), ("0x10", "int"), ("1__0", "float")])
def test_numbers_are_ascii_digits_not_whatever_python_reads(text, typ):
    # int("٣") is 3 and int("1_0") is 10 in Python: a param that says something else is refused
    with pytest.raises(ParamError, match=rf"^--param n=.*: expected {typ}: (digits|a decimal)"):
        coerce_param("n", text, typ)


@pytest.mark.parametrize("text, want", [(" 16 ", 16), ("+3", 3), ("-0", 0)])
def test_plain_ints_still_read(text, want):
    assert coerce_param("n", text, "int") == want


@pytest.mark.parametrize("text, want", [("1e-3", 0.001), (".5", 0.5), ("5.", 5.0), ("-2.5E2", -250.0), ("3", 3.0)])
def test_plain_floats_still_read(text, want):
    assert coerce_param("n", text, "float") == want


@pytest.mark.parametrize("value, typ, tail", [
    ("x,y", "list",
     "expected list as JSON, e.g. --param items='[\"a\", \"b\"]'; not JSON: Expecting value at character 0"),
    ("[a, b]", "list", "expected list as JSON, e.g. --param items='[\"a\", \"b\"]'; not JSON: Expecting value"),
    ("a=1", "dict", "expected dict as JSON, e.g. --param items='{\"a\": 1}'; not JSON"),
    ('{"a": 1}', "list", "expected list as JSON, e.g. --param items='[\"a\", \"b\"]'"),
])
def test_a_list_or_dict_param_that_is_not_json_says_how_to_write_it(value, typ, tail):
    """`--param names=x,y` (or YAML's [a, b]) said only 'expected list': nothing about JSON or the quoting."""
    with pytest.raises(ParamError) as info:
        coerce_param("items", value, typ)
    assert str(info.value).startswith(f"--param items={value}: {tail}")


def test_a_param_given_twice_with_two_values_is_refused():
    """`-p x=1 -p x=2` ran with x=2, the first value dropped without a word."""
    from kubepipe.cli.options import parse_params
    from kubepipe.errors import UserError

    with pytest.raises(UserError) as exc:
        parse_params(["x=1", "epochs=3", "x=2"])
    assert str(exc.value) == "--param x is given twice, x=1 and x=2; give it once"
    with pytest.raises(UserError, match=r"api_token=<redacted> and api_token=<redacted>"):
        parse_params(["api_token=abc123def", "api_token=zzz999yyy"])  # credentials are not said back
    assert parse_params(["x=1", " x=1"]) == {"x": "1"}  # the same value twice says the same thing


def test_a_typed_param_default_from_the_environment_is_read_as_its_type(tmp_path, monkeypatch):
    """`default: "${env.EPOCHS:-5}"` on an int param was refused: "default '5' is not of type int; unquote it: in
    quotes, YAML reads '5' as text", whatever was done; the text is read as the type, as --param text is."""
    import kubepipe
    from kubepipe.errors import ValidationError

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nparams:\n"
        "  n: {type: int, default: \"${env.KP_N:-5}\"}\n  f: {type: float, default: \"${env.KP_F:-0.5}\"}\n"
        "  b: {type: bool, default: \"${env.KP_B:-true}\"}\n  xs: {type: list, default: \"${env.KP_XS:-[1, 2]}\"}\n"
        "  s: {type: str, default: \"${env.KP_S:-7}\"}\n"
        "steps:\n  a: {component: ops:say, with: {message: \"${params.s}\", value: \"${params.n}\"}}\n")
    params = kubepipe.load(tmp_path / "p.yaml").spec.params
    assert [params[k].default for k in ("n", "f", "b", "xs", "s")] == [5, 0.5, True, [1, 2], "7"]
    monkeypatch.setenv("KP_N", "12")
    assert kubepipe.load(tmp_path / "p.yaml").spec.params["n"].default == 12
    monkeypatch.setenv("KP_N", "lots")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "p.yaml")
    assert [(i.path, i.message) for i in exc.value.issues] == [
        ("params.n.default", "`${env.KP_N:-5}` gives 'lots': expected int: digits 0-9, optionally signed (e.g. 16)")]


def test_a_dict_param_default_from_the_environment_shows_the_variable_s_value_as_the_example(tmp_path, monkeypatch):
    """A bad `${env.D}` on a dict param was told `e.g. --param d='{"a": 1}'`, which fits no YAML default: the
    example is the variable's value, as the shell sets it."""
    import kubepipe
    from kubepipe.errors import ValidationError

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nparams:\n"
        "  d: {type: dict, default: \"${env.KP_D}\"}\n  xs: {type: list, default: \"${env.KP_XS:-a,b}\"}\n"
        "steps:\n  a: {component: ops:say, with: {message: hi}}\n")
    monkeypatch.setenv("KP_D", "{a: 1}")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "p.yaml")
    assert [(i.path, i.message.split("; not JSON")[0]) for i in exc.value.issues] == [
        ("params.d.default", "`${env.KP_D}` gives '{a: 1}': expected dict as JSON, e.g. KP_D='{\"a\": 1}'"),
        ("params.xs.default", "`${env.KP_XS:-a,b}` gives 'a,b': expected list as JSON, e.g. KP_XS='[\"a\", \"b\"]'")]


@pytest.mark.parametrize("n, arrives", [(2**53 + 1, 2**53), (-(2**53) - 3, -(2**53) - 4), (2**62 + 1, 2**62)])
def test_an_int_a_double_would_round_is_refused_saying_what_it_would_become(n, arrives):
    """KFP keeps a number as a double: `--param big=9007199254740993` reached the step as 9007199254740992,
    silently (a default or a `with:` value too); anything within int64 was taken."""
    with pytest.raises(ParamError) as exc:
        coerce_param("big", str(n), "int")
    assert str(exc.value) == (
        f"--param big={n}: expected int: the value would arrive as {arrives}: KFP keeps numbers as doubles, which "
        "hold every whole number within ±2^53 (9007199254740992) but only some beyond; give it as text, to a str "
        "param or input")
    for kept in (2**53, -(2**53), 2**60, 10**18):  # a double holds these: nothing to refuse
        assert coerce_param("big", str(kept), "int") == kept
