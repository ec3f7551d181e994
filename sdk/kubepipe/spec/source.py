"""YAML source files read safely, with the line:col of every node kept for errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubepipe.errors import Issue, ValidationError

__all__ = ["Source", "read_source", "parse_yaml", "Locator"]

Path_ = tuple  # a YAML path: ("steps", "train", "with", "epochs")


@dataclass
class Locator:
    """Maps YAML paths to (line, col), 1-based, for one file."""

    file: str
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def find(self, path: Path_) -> tuple[int | None, int | None]:
        # The deepest known ancestor is the best place to point at.
        p = tuple(path)
        while p:
            if p in self.positions:
                return self.positions[p]
            p = p[:-1]
        return self.positions.get((), (None, None))

    def issue(self, path: Path_, message: str, *, value: Any = None, hint: str | None = None,
              severity: str = "error") -> Issue:
        line, col = self.find(path)
        return Issue(message=message, path=format_path(path), file=self.file, line=line, col=col,
                     value=value, hint=hint, severity=severity)


@dataclass
class Source:
    file: str
    text: str
    data: Any
    locator: Locator


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def read_source(path: str | Path) -> Source:
    p = Path(path)
    shown = str(path)
    if not p.exists():
        raise ValidationError([Issue(f"file not found", file=shown, hint="check the path")])
    if p.is_dir():
        raise ValidationError([Issue("is a folder, not a YAML file", file=shown)])
    try:
        raw = p.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError([Issue(f"not UTF-8 text (byte {exc.start})", file=shown,
                                     hint="save the file as UTF-8")]) from None
    except OSError as exc:
        raise ValidationError([Issue(f"cannot read: {exc.strerror}", file=shown)]) from None
    return parse_yaml(text, shown)


def parse_yaml(text: str, file: str = "<input>") -> Source:
    """Parse with ruamel's round-trip loader (safe: it builds no Python objects from tags)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        hint = "each key may appear only once in a mapping" if "duplicate" in problem else \
            "check indentation, quotes and colons here"
        raise ValidationError([Issue(f"invalid YAML: {problem}", file=file, line=line, col=col,
                                     hint=hint)]) from None
    except YAMLError as exc:
        raise ValidationError([Issue(f"invalid YAML: {exc}", file=file)]) from None
    except RecursionError:
        raise ValidationError([Issue("invalid YAML: nested too deeply", file=file)]) from None
    locator = Locator(file)
    data = _plain(node, (), locator)
    locator.positions.setdefault((), (1, 1))
    return Source(file=file, text=text, data=data, locator=locator)


def _plain(node: Any, path: Path_, loc: Locator) -> Any:
    """CommentedMap/Seq -> dict/list, recording where each key and item starts."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            k = str(key)
            try:
                line, col = node.lc.key(key)
                loc.positions[path + (k,)] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            out[k] = _plain(value, path + (k,), loc)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            try:
                line, col = node.lc.item(i)
                loc.positions[path + (i,)] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(value, path + (i,), loc))
        return items
    if isinstance(node, TaggedScalar):
        return str(node.value)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node
