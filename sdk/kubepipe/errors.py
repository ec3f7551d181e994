"""The one exception family of kubepipe. User errors exit 2 with a short message."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["KubepipeError", "Issue", "ValidationError", "UserError", "ServiceError", "LockTimeout", "one_line",
           "printable", "terminal_text"]

# C0 and C1 control characters and Unicode's line and paragraph separators: each would break a line
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# the same, less newline and tab: what a multi-line text (a model card, a table cell of lines) keeps as it is
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with its control characters escaped as Python writes them (a tab as `\\t`): one line always."""
    return _CONTROL.sub(_escaped, text)


def printable(text: str) -> str:
    """`text` as the CLI prints stored or user data (a run id, a model card, a label, a reason): each control
    character but newline and tab escaped as visible text (ESC as `\\x1b`), so none reaches the terminal as a
    command (clear the screen, recolour, move the cursor)."""
    return _CONTROL_BUT_LINES.sub(_escaped, text)


# an SGR sequence (colour, bold: `ESC[...m`), which a step's log may colour its lines with, else one control character
_SGR_OR_CONTROL = re.compile("(\x1b\\[[0-9;]*m)|" + _CONTROL_BUT_LINES.pattern)


def terminal_text(text: str) -> str:
    """A step's own output as a terminal is given it live: as `printable`, except that its colour codes (SGR,
    `ESC[...m`) are kept; any other control sequence (clear the screen `ESC[2J`, move the cursor, a title) is
    visible text."""
    return _SGR_OR_CONTROL.sub(lambda m: m.group(1) or _escaped(m), text)


def _escaped(m: re.Match) -> str:
    return repr(m.group())[1:-1]


class KubepipeError(Exception):
    """Base of every error kubepipe raises on purpose."""

    exit_code = 1


class UserError(KubepipeError):
    """Bad input from the user: a message that says what is wrong and what to do."""

    exit_code = 2


class ServiceError(UserError):
    """A remote service (Kubeflow Pipelines, Vertex AI) failed or did not answer (5xx, 408, 429, no connection):
    not the user's input, so exit 1 like other failed work; a script may retry it. A UserError for every
    `except UserError` that reports it."""

    exit_code = 1


class LockTimeout(KubepipeError, TimeoutError):
    """A file lock (`kubepipe.util.locked`) still held by another process when its `timeout_s` ran out: its holder
    hangs, or works for longer than the caller allows. Exit 1: nothing is wrong with the input; a retry may pass.
    `path` is the lock file, `timeout_s` the wait, `holder_pid` the pid the lock file names (None: none)."""

    exit_code = 1

    def __init__(self, message: str, *, path: str = "", timeout_s: float = 0.0, holder_pid: int | None = None):
        super().__init__(message)
        self.path, self.timeout_s, self.holder_pid = path, timeout_s, holder_pid


@dataclass(frozen=True)
class Issue:
    """One problem, located: YAML path, file:line:col, the bad value and a hint."""

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    value: object = None
    hint: str | None = None
    severity: str = "error"
    # the user's exception behind it (their module failing to import): the ValidationError's __cause__
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def location(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        return where

    def to_dict(self) -> dict:
        """As the JSON documents carry a warning (docs/cli.md); the value is left out (it may be a secret)."""
        return {"message": self.message, "path": self.path, "file": self.file, "line": self.line, "col": self.col,
                "hint": self.hint}

    def format(self) -> str:
        """`file:line:col: path: message (got value); hint` on one line (a tab or newline in a value, escaped)."""
        head = f"{self.location}: " if self.file or self.line is not None else ""
        if self.path:
            head += f"{self.path}: "
        text = head + self.message
        if self.value is not None and not isinstance(self.value, (dict, list)):
            from kubepipe.secrets import redacted  # a credential is never echoed back

            shown = redacted(self.value, self.path.rsplit('.', 1)[-1] or None)
            text += f" (got {str(shown).lower() if isinstance(shown, bool) else repr(shown)})"  # YAML's `true`
        if self.hint:
            text += f"; {self.hint}"
        return one_line(text)


@dataclass
class ValidationError(UserError):
    """Every issue found at once. Its `__cause__` is the first issue's `cause` (a user's module that did not import:
    their exception, its traceback at their file:line), so the boundary keeps what the user's code raised."""

    issues: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.issues = sorted(self.issues, key=lambda i: (i.file or "", i.line or 0, i.col or 0))
        super().__init__(self.__str__())
        self.__cause__ = next((i.cause for i in self.issues if i.cause is not None), None)

    def __str__(self) -> str:
        n = len(self.issues)
        lines = [f"{n} problem{'s' if n != 1 else ''} found:"]
        lines += [f"  {i.format()}" for i in self.issues]
        return "\n".join(lines)
