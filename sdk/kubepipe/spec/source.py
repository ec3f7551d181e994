"""YAML source files read safely, with the line:col of every node kept for errors."""

from __future__ import annotations

import re
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
    included: list[Locator] = field(default_factory=list)  # files whose values were merged in, in order
    word_bools: dict[Path_, str] = field(default_factory=dict)  # `yes`, `off`...: YAML 1.1 read them as bools
    # keys read as the one they are closest to (`wth:` as `with:`), meant path -> written path: a problem found
    # under one is said where it is written (`steps.a.wth.value`), not at the step
    renamed: dict[Path_, Path_] = field(default_factory=dict)
    # plain values a `#` right after cut short (`- STORE #1234 WA` is `STORE`): path -> the text read as a comment
    cut_comments: dict[Path_, str] = field(default_factory=dict)

    def known(self, path: Path_) -> tuple:
        """The deepest ancestor of `path` (or itself) that this file has."""
        p = tuple(path)
        while p and p not in self.positions:
            p = p[:-1]
        return p

    def written(self, path: Path_) -> Path_:
        """`path` as the file writes it: under a key read as another (`renamed`), that key as written; the deepest
        first, then those above it (`metdata: {nmae: x}`: metadata.name is metdata.nmae)."""
        p = tuple(path)
        for meant in sorted(self.renamed, key=len, reverse=True):
            if p[:len(meant)] == meant:
                p = self.renamed[meant] + p[len(meant):]
        return p

    def find(self, path: Path_) -> tuple[int | None, int | None]:
        # The deepest known ancestor is the best place to point at.
        return self.positions.get(self.known(path), (None, None))

    def issue(self, path: Path_, message: str, *, value: Any = None, hint: str | None = None,
              severity: str = "error") -> Issue:
        path = self.written(path)
        # a merged-in value is located in the file that wrote it (later files win, as in the merge)
        where = max([self, *reversed(self.included)], key=lambda lc: len(lc.known(path)))
        line, col = where.find(path)
        return Issue(message=message, path=format_path(path), file=where.file, line=line, col=col,
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


MAX_SOURCE_BYTES = 16 * 1024 * 1024  # a pipeline is kilobytes; /dev/zero must not fill memory
_DATA_FILES = frozenset({".csv", ".tsv", ".parquet", ".pq", ".xlsx", ".npy"})


def _folder_hint(folder: Path) -> str:
    """Which YAML files a folder given for one holds (`kubepipe validate pipelines` said only 'is a folder')."""
    try:
        found = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".yaml", ".yml") and f.is_file())
    except OSError:
        found = []
    if not found:
        return "give a YAML file's path (this folder holds none)"
    names = ", ".join(str(f) for f in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return f"give one of its YAML files: {names}"


def read_source(path: str | Path, *, regular_only: bool = False) -> Source:
    """Read and parse a YAML file. `regular_only` (includes): refuse devices, FIFOs and sockets,
    which would block or never end, before opening them."""
    p = Path(path)
    shown = str(path)
    if not p.exists():
        raise ValidationError([Issue("file not found", file=shown, hint="check the path")])
    if p.is_dir():
        raise ValidationError([Issue("is a folder, not a YAML file", file=shown, hint=_folder_hint(p))])
    if p.suffix.lower() in _DATA_FILES:  # tab-completed to the data: 'invalid YAML' at some line of the CSV
        raise ValidationError([Issue(f"a data file ({p.suffix}), not a YAML file", file=shown,
                                     hint="pass the .yaml file; a pipeline's data is read by its steps (load-data's "
                                          "`source`)")])
    if regular_only and not p.is_file():
        raise ValidationError([Issue("is not a regular file (a device, FIFO or socket)", file=shown,
                                     hint="include a YAML file")])
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_SOURCE_BYTES + 1)
        if len(raw) > MAX_SOURCE_BYTES:
            raise ValidationError([Issue(f"larger than {MAX_SOURCE_BYTES // 2**20} MiB; not a pipeline file",
                                         file=shown, hint="move data out of the YAML")])
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError([Issue(f"not UTF-8 text (byte {exc.start})", file=shown,
                                     hint="save the file as UTF-8")]) from None
    except OSError as exc:
        raise ValidationError([Issue(f"cannot read: {exc.strerror}", file=shown)]) from None
    return parse_yaml(text, shown)


_LOADER = None


def _yaml():
    import yaml

    return yaml


# YAML 1.1 numbers nobody means: `010` was 8 and `1:30` was 90 (a zip code, a time); they stay text
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


def _loader_class():
    """PyYAML's C safe loader, with dates, octal and base-60 numbers left as text: models validate
    them, with a location. Made whole before it is shared: another thread (the Python API's) that found it
    made and its resolvers not yet narrowed read `010` as 8."""
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        narrower = {"tag:yaml.org,2002:int": _INT, "tag:yaml.org,2002:float": _FLOAT}
        resolvers = {first: [(tag, narrower.get(tag, rx)) for tag, rx in found if tag != "tag:yaml.org,2002:timestamp"]
                     for first, found in base.yaml_implicit_resolvers.items()}
        _LOADER = type("KubepipeLoader", (base,), {"yaml_implicit_resolvers": resolvers})
    return _LOADER


def parse_yaml(text: str, file: str = "<input>") -> Source:
    """Parse safely (PyYAML's C SafeLoader: plain data only) and record each node's line:col."""
    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        locator = Locator(file)
        issues: list[Issue] = []
        if node is not None:
            _check_shape(node, file)
            _walk(node, (), locator, issues, lines=_LINE_BREAK.split(text))  # before constructing: that rewrites merge keys (`<<`) in place
        data = loader.construct_document(node) if node is not None else None
    except _yaml().MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        hint = "check indentation, quotes and colons here"
        if (mark and _char_at(text, mark.line, mark.column) == "\t") or "tab character" in problem:
            problem, hint = ("a tab character: YAML indents with spaces only",
                             "replace the tab with spaces (set your editor to insert spaces in .yaml files)")
        elif problem.startswith("did not find expected ','") and mark and _BARE_REF.search(_line_at(text, mark.line)):
            # `labels: {team: ${env.TEAM}}`: the reference's `}` ends the `{...}` it stands in
            problem, hint = ("a `${...}` reference unquoted inside a `{...}` or `[...]`, whose `}` ends it early",
                             'quote the value, e.g. `{team: "${env.TEAM}"}`, or write the mapping as lines')
        elif problem == "but found another document":  # PyYAML's text, which began mid-sentence
            # parse_yaml reads profiles and includes too: "a pipeline file" misnamed those
            problem, hint = ("a second YAML document (`---`); kubepipe reads one document per file",
                             "put each pipeline (or profile) in a file of its own")
        raise ValidationError([Issue(f"invalid YAML: {problem}", file=file, line=line, col=col, hint=hint)]) from None
    except _yaml().reader.ReaderError as exc:  # a control character: PyYAML names only its offset in the text
        before = text[:exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise ValidationError([Issue(f"invalid YAML: a control character (U+{code:04X}), which YAML text cannot "
                                     "hold", file=file, line=line, col=col,
                                     hint="delete it; in a double-quoted value, an escape such as \\x07 writes one")
                               ]) from None
    except _yaml().YAMLError as exc:
        raise ValidationError([Issue(f"invalid YAML: {exc}", file=file)]) from None
    except (RecursionError, ValueError, TypeError) as exc:
        raise ValidationError([Issue(f"invalid YAML: {exc}", file=file)]) from None
    finally:
        loader.dispose()
    locator.positions.setdefault((), (1, 1))
    if issues:
        raise ValidationError(issues)
    return Source(file=file, text=text, data=_plain(data), locator=locator)


_BARE_REF = re.compile(r"[\s{\[,:]\$\{")  # a `${` a flow collection's item begins with (not inside quotes)


def _char_at(text: str, line: int, col: int) -> str:
    return _line_at(text, line)[col:col + 1]


def _line_at(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line] if 0 <= line < len(lines) else ""


MAX_NODES = 200_000  # after alias expansion; a pipeline is a few thousand
MAX_DEPTH = 100  # levels of nested mappings/lists; a pipeline needs about ten


def _check_shape(root, file: str) -> None:
    """Refuse recursive aliases, alias bombs (more than MAX_NODES values once expanded) and values
    nested deeper than MAX_DEPTH, each at the node where it happens, before anything expands them.

    One iterative post-order pass (a node's size and height after its children's): no depth hits
    Python's recursion limit here, and everything after this check works on bounded depth.
    """
    import yaml

    def where(node) -> dict:
        return {"file": file, "line": node.start_mark.line + 1, "col": node.start_mark.column + 1}

    size: dict[int, int] = {}
    height: dict[int, int] = {}
    parent: dict[int, int] = {}  # the node that first holds it (an alias holds it again elsewhere)
    aliased: set[int] = set()  # nodes whose values include an alias's
    started: set[int] = set()  # on the current path until finished
    stack: list[tuple] = [(root, None)]
    while stack:
        node, kids = stack.pop()
        key = id(node)
        if kids is not None:  # all children done
            started.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in kids)
            height[key] = 1 + max((height[id(c)] for c in kids), default=0)
            if len({id(c) for c in kids}) < len(kids) or any(id(c) in aliased or parent[id(c)] != key for c in kids):
                aliased.add(key)
            if size[key] > MAX_NODES:
                raise ValidationError([_too_many(key in aliased, where(node))])
            continue
        if key in size:
            continue  # reused through an alias: counted again by its parent, walked once
        if key in started:
            raise ValidationError([Issue("invalid YAML: an alias refers to itself (recursive anchor)",
                                         hint="anchors (&) may only be reused (*), not nested in themselves",
                                         **where(node))])
        if isinstance(node, yaml.MappingNode):
            kids = [n for kv in node.value for n in kv]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        else:
            kids = []
        started.add(key)
        for c in kids:
            parent.setdefault(id(c), key)
        stack.append((node, kids))
        stack += [(c, None) for c in reversed(kids)]
    if height[id(root)] <= MAX_DEPTH:
        return
    node = root
    for _ in range(MAX_DEPTH):  # follow the deepest branch down to the first level too deep
        kids = [n for kv in node.value for n in kv] if isinstance(node, yaml.MappingNode) else node.value
        node = max(kids, key=lambda c: height[id(c)])
    raise ValidationError([Issue(f"invalid YAML: values nested more than {MAX_DEPTH} levels deep",
                                 hint="a pipeline needs a few levels; flatten this value", **where(node))])


def _too_many(aliased: bool, where: dict) -> Issue:
    """More than MAX_NODES values: an alias bomb, or (no alias) data a pipeline should not carry."""
    if aliased:
        return Issue(f"invalid YAML: aliases expand to more than {MAX_NODES:,} values",
                     hint="a pipeline needs far fewer; check the anchors (&) and aliases (*)", **where)
    return Issue(f"invalid YAML: more than {MAX_NODES:,} values",
                 hint="a pipeline needs far fewer; put the data in a file and give the step its path "
                      "(a param holding the path)", **where)


# PyYAML's line breaks (its marks count lines by them), and a comment begun right after a plain value: ` #1234 WA`
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_CUT = re.compile(r"[ \t]+(#[^\s#].*)")


def _walk(node, path: Path_, loc: Locator, issues: list[Issue], depth: int = 0, lines: list[str] | None = None) -> None:
    """Positions of keys and items, every key text as written; duplicate keys are errors (PyYAML would keep the
    last); plain values a comment cut short (`cut_comments`)."""
    import yaml

    if depth > 200:
        return
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        merged: list = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged += value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            # a key is a name, read as written: YAML 1.1 made `on:` the key True, `null:` None and `1.10:` 1.1,
            # which reached the model as `True`, `None`, `1.1` (a label `on: x` was `True: x`), and unlocated
            key_node.tag = "tag:yaml.org,2002:str"
            k = key_node.value
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if k in seen:
                issues.append(Issue(f"invalid YAML: duplicate key `{k}` (first on line {seen[k]})", path=format_path(path + (k,)),
                                    file=loc.file, line=line, col=col, hint="each key may appear only once in a mapping"))
            seen[k] = line
            loc.positions[path + (k,)] = (line, col)
            _walk(value_node, path + (k,), loc, issues, depth + 1, lines)
        for source in merged:  # `<<: *base`: its keys are located at the anchor; the mapping's own keys win
            if isinstance(source, yaml.MappingNode):
                inner = Locator(loc.file)
                _walk(source, path, inner, [], depth, lines)  # its own problems are said where it is written
                for p, pos in inner.positions.items():
                    if p[len(path)] not in seen:
                        loc.positions.setdefault(p, pos)
                for p, word in inner.word_bools.items():
                    if p[len(path)] not in seen:
                        loc.word_bools.setdefault(p, word)
                for p, cut in inner.cut_comments.items():
                    if p[len(path)] not in seen:
                        loc.cut_comments.setdefault(p, cut)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            loc.positions[path + (i,)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(item, path + (i,), loc, issues, depth + 1, lines)
    else:
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
            loc.word_bools[path] = node.value
        end = node.end_mark
        if not node.style and lines is not None and node.start_mark.line == end.line < len(lines):  # plain: None or ""
            comment = _CUT.match(lines[end.line], end.column)
            if comment:  # `- STARBUCKS STORE #1234 SEATTLE WA` is the text `STARBUCKS STORE`
                loc.cut_comments[path] = comment.group(1).rstrip()


def _plain(data: Any) -> Any:
    """Keys as strings; dates and other YAML types as text, so models see JSON-like data."""
    import datetime

    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if isinstance(data, (datetime.date, datetime.datetime, bytes)):
        return data.isoformat() if not isinstance(data, bytes) else data.decode("utf-8", "replace")
    return data
