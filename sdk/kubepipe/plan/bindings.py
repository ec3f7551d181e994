"""Parse YAML values into bindings (literals or ${...} references) and `when:` conditions."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

from kubepipe.catalog.ports import Port, literal_fits
from kubepipe.plan.model import Binding, Condition, ContextRef, ItemRef, Literal, Nested, OutputRef, ParamRef
from kubepipe.spec.interpolation import REF_RE, Ref, find_refs
from kubepipe.util import did_you_mean

__all__ = ["parse_value", "parse_condition", "condition_types_issue", "item_field_issue", "item_type_issue",
           "items_field_issue", "known_items", "BindingError", "Verbatim"]


@dataclass(frozen=True)
class Verbatim:
    """Text taken as it is: it came from an environment variable, so a `${...}` in it is not
    a reference (`KP_X='${params.p}'` stays that literal string)."""

    text: str



_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_OPERATOR_CHAR = re.compile(r"[=!<>]")
_LOGIC = re.compile(r"(?i)(?<!\S)(and|or|not)(?!\S)|&&|\|\||!(?!=)")
_QUOTED_OR_REF = re.compile(r"\$\{[^}]*\}|'[^']*'|\"[^\"]*\"")
_OPERATOR = re.compile(r"[=!<>]+")
_OPERATOR_FIX = {"=": "==", "===": "==", "=>": ">=", "=<": "<=", "<>": "!=", "!==": "!="}


class BindingError(ValueError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def _to_binding(ref: Ref) -> Binding:
    if ref.kind == "param":
        return ParamRef(ref.name)
    if ref.kind == "output":
        return OutputRef(ref.name, ref.output)
    if ref.kind == "item":
        return ItemRef(ref.field)
    raise BindingError(f"`{ref.text}` was not resolved")


def parse_value(value: Any) -> Binding:
    """A whole-string reference becomes a binding; anything else is a literal (checked for refs)."""
    if isinstance(value, Verbatim):
        return Literal(value.text)
    if isinstance(value, str):
        refs = find_refs(value)
        if refs:
            m, ref = refs[0]
            if isinstance(ref, str):
                raise BindingError(ref)
            if len(refs) == 1 and m.group(0) == value.strip():
                return _to_binding(ref)
            raise BindingError(f"`{value}` embeds a run-time value inside text",
                               "pass the reference as the whole value; components receive it typed")
        return Literal(value)
    if isinstance(value, (dict, list)):
        template = _template(value)
        return Nested(template) if _has_refs(value) else Literal(_plain(value))
    return Literal(value)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.text if isinstance(value, Verbatim) else value


def _has_refs(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_refs(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_refs(v) for v in value)
    return isinstance(value, str) and bool(REF_RE.search(value))


def _template(value: Any) -> Any:
    """Leaves that are whole references become bindings; KFP delivers them as text."""
    if isinstance(value, dict):
        return {k: _template(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_template(v) for v in value]
    if isinstance(value, Verbatim):
        return value.text
    if isinstance(value, str) and REF_RE.search(value):
        b = parse_value(value)
        if isinstance(b, Literal):
            raise BindingError(f"`{value}` is not a reference")
        return b
    return value


def _operand(text: str) -> Binding:
    text = text.strip()
    if text.startswith("${"):
        b = parse_value(text)
        if isinstance(b, Literal):
            raise BindingError(f"`{text}` is not a reference")
        return b
    low = text.lower()
    if low in ("true", "false"):
        return Literal(low == "true")
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return Literal(text[1:-1])
    try:
        return Literal(int(text))
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):  # KFP wrote `nan` / `inf` into the CEL condition, which has no such names
            raise BindingError(f"`{text}` is not a finite number; a condition compares with a number such as 0.5",
                               "compare with a finite bound, e.g. `< 1e9` for 'no limit'")
        return Literal(number)
    raise BindingError(f"`{text}` is neither a reference nor a literal",
                       "quote strings: ${steps.s.outputs.o} == 'ok'")


def _split_comparison(text: str) -> tuple[str, str, str] | None:
    """`<left> <op> <right>` at the first operator that leaves both sides non-empty, each on one line, in one pass.

    The pattern `^\\s*(.+?)\\s*(op)\\s*(.+?)\\s*$` read the same but tried every split of a run of spaces
    between its `\\s*`: 4,000 spaces took a second, and more grew faster."""
    s = text.strip()
    first_nl, last_nl = s.find("\n"), s.rfind("\n")
    # past a newline that text follows, the left side holds a newline for every later operator
    left_ends = len(s) if first_nl < 0 else first_nl + len(s[first_nl:]) - len(s[first_nl:].lstrip())
    # the right side holds a newline while some text lies between the operator and the last newline
    right_from = -1 if last_nl < 0 else len(s[:last_nl].rstrip())
    for at in _OPERATOR_CHAR.finditer(s, 1):
        if at.start() > left_ends:
            return None
        for op in _COMPARISONS:  # in the pattern's order: `>=` first, then `>` where `=` is all that follows
            end = at.start() + len(op)
            if s.startswith(op, at.start()) and right_from <= end < len(s):
                return s[:at.start()].rstrip(), op, s[end:].lstrip()
    return None


def parse_condition(text: str) -> Condition:
    logic = _LOGIC.search(_QUOTED_OR_REF.sub(" ", text or ""))
    if logic:  # KFP's dsl.If takes one comparison; without this the word read as an operand
        word = logic.group(0)
        how = ("negate the comparison instead (`!=` for `==`, `<=` for `>`)" if word.lower() in ("not", "!") else
               "compute the combined test in a step with a bool output and compare that: "
               '"${steps.NAME.outputs.ok} == true"')
        raise BindingError(f"`{text.strip()}`: `when:` is one comparison; `{word}` is not supported", how)
    for op in _OPERATOR.findall(_QUOTED_OR_REF.sub(" ", text or "")):  # `=>` read as `>` after the text `=`
        if op not in ("==", "!=", "<=", ">=", "<", ">"):
            fix = _OPERATOR_FIX.get(op)
            raise BindingError(f"`{text.strip()}`: `{op}` is not a comparison",
                               f"write `{fix}`" if fix else "compare with ==, !=, <, <=, > or >=")
    split = _split_comparison(text or "")
    if split is None:
        raise BindingError(f"`{text}` is not a condition",
                           'write <ref> <op> <value>, e.g. "${steps.evaluate.outputs.passed} == true"')
    left, op, right = _operand(split[0]), split[1], _operand(split[2])
    if isinstance(left, Literal) and isinstance(right, Literal):
        raise BindingError(f"`{text}` compares two constants", "reference a param or a step output")
    if isinstance(left, ItemRef) or isinstance(right, ItemRef):
        raise BindingError("`${item}` cannot be used in `when:`")
    return Condition(left, op, right, text.strip())


_COMPARABLE = {"str": "str", "int": "number", "float": "number", "bool": "bool"}
_HOW = {"str": "quote the value: == 'ok'", "number": "compare with a number, unquoted: > 3",
        "bool": "write == true or == false, unquoted"}


def _shown(b: Binding) -> str:
    if isinstance(b, OutputRef):
        return f"${{steps.{b.step}.outputs.{b.output}}}"
    if isinstance(b, ParamRef):
        return f"${{params.{b.name}}}"
    value = b.value if isinstance(b, (Literal, ContextRef)) else b
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _own_type(b: Binding) -> str:
    """The type of a literal's value (a reference's type is its port's or param's)."""
    return type(b.value).__name__ if isinstance(b, (Literal, ContextRef)) else type(b).__name__


def condition_types_issue(sides: Sequence[tuple[Binding, str | None]]) -> BindingError | None:
    """Both sides of a `when:` must be of one kind (text, number or bool): (operand, its type) pairs,
    None for a literal's own type.

    KFP's lowering gets a mix wrong without a word: a bool against 1 is inverted (`== false`), a
    number or bool against a quoted value compares the expression's own text (always false), and
    a bool against an int reference fails the compiler."""
    typed = [(_shown(b), typ or _own_type(b), not isinstance(b, Literal)) for b, typ in sides]
    for shown, typ, _ in typed:
        if typ not in _COMPARABLE:
            return BindingError(f"`{shown}` is {typ}; a condition compares str, int, float or bool values")
    (a, ta, a_ref), (b, tb, _) = typed
    if _COMPARABLE[ta] == _COMPARABLE[tb]:
        return None
    return BindingError(f"`{a}` is {ta} but `{b}` is {tb}; the two sides of a condition must both be text, "
                        "numbers or bools", _HOW[_COMPARABLE[ta] if a_ref else _COMPARABLE[tb]])


def item_field_issue(foreach: Any, field: str, params: dict) -> BindingError | None:
    """`${item.field}` over items known at validate (a literal `foreach:` list, or the default of the
    `${params.x}` it names): each must be a mapping that has `field`. KFP does not check it: the step
    received the whole item instead."""
    items, where = known_items(foreach, params)
    return items_field_issue(items, field, where)


def known_items(foreach: Any, params: dict) -> tuple[Any, str]:
    """The items a `foreach:` goes over where validate knows them (else None), and where they are written."""
    items, where = foreach, "the `foreach` list"
    try:
        ref = parse_value(foreach) if isinstance(foreach, str) else None
    except BindingError:  # `foreach:` itself reports it
        return None, where
    if isinstance(ref, ParamRef):
        items, where = getattr(params.get(ref.name), "default", None), f"the default of param `{ref.name}`"
    return items, where


def item_type_issue(items: Any, port: Port, where: str, name: str) -> BindingError | None:
    """The first of `items` (a list; anything else is not checked here) that a whole `${item}` cannot pass to
    the input `name` of type `port.type`."""
    from kubepipe.spec.values import quote_hint

    for i, v in enumerate(items if isinstance(items, list) else []):
        if not literal_fits(v, port):
            return BindingError(f"`${{item}}`: item {i} of {where} is {v!r}, but `{name}` expects {port.type}",
                                quote_hint(v, port.type))
    return None


def items_field_issue(items: Any, field: str, where: str) -> BindingError | None:
    """The first of `items` (a list; anything else is not checked here) that is not a mapping with `field`."""
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            return BindingError(f"`${{item.{field}}}`: item {i} of {where} is {item!r}, not a mapping with a "
                                f"`{field}` field", "use `${item}` for the item itself")
        if field not in item:
            return BindingError(f"`${{item.{field}}}`: item {i} of {where} has no field `{field}` (it has: "
                                f"{', '.join(map(str, item)) or 'none'})", did_you_mean(field, [str(k) for k in item]))
    return None
