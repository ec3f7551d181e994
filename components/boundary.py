"""The failure boundary of your own python component's step, on Kubeflow and Vertex AI as a built-in's.

A built-in's body runs inside `fail_fast`, whose excepthook prints the failure through the one redactor. Your
component's body is yours: kfp's executor let its exception reach Python's own hook, which printed the raw
traceback into the pod log, a token, a URL's password or an `api_key=` in its message or in a repr shown as is.
So the compiler (kubeflow and vertex) runs each python step's `python3 -m kfp.dsl.executor_main ...` as `python3 -c
BOOT kfp.dsl.executor_main ...` (`guarded_command`; your source is not touched): BOOT puts the step's stdout and
stderr behind the redactor (user_streams: what your component prints or logs, kfp's log of its inputs, a thread's
exception, a subprocess's output), installs `user_excepthook` and runs kfp's executor as before. The failure that
ends the step is then printed as a built-in's (`report_failure`): Python's traceback with your exception's type,
message and causes, credentials hidden (`failure_text`), the frames of kfp's copy of your function shown at your
file's lines (`File "mypkg/steps.py", line 19, in total`); for a ComponentError the line that names it (a
GateFailed's: `kubepipe: gate rejected ...`, the gate said no); and the task exits 1, which KFP reads as failed. The
local runner's task_main reports through `report_failure` too. A step that can say no (compiler/user_gate) also leaves
its gate's verdict here; one compiled without the run's inputs that raises GateFailed anyway says in one more line
that the run reads failed, not rejected, and to set `gate: true` on the step (`NOT_A_GATE`).

An image without kubepipe (kfp's default python image, a base_image of your own) cannot redact: BOOT then prints
your exception's type and your file:line only, never its message, and says how to see it.
"""

from __future__ import annotations

import json
import os
import re
import sys

__all__ = ["EXECUTOR", "COMPONENT_ERROR", "GATE_REJECTED", "NOT_A_GATE", "RUN_INPUTS", "report_failure",
           "user_excepthook", "guarded_command", "run_gate", "at_user_lines"]

RUN_INPUTS = ("ctx_run_id", "ctx_run_name")  # what a gate's verdict needs of the run, given to the task as inputs

EXECUTOR = "python3 -m kfp.dsl.executor_main"  # as kfp writes it in a Python-function component's command
COMPONENT_ERROR = "kubepipe: component error "
GATE_REJECTED = "kubepipe: gate rejected "  # in its place for a GateFailed, the user's subclasses too: the gate said no
# a GateFailed of a step compiled without the run's inputs (compiler/user_gate): its no cannot be told from a break
NOT_A_GATE = ("kubepipe: this step said no (GateFailed) but was compiled without the run's id, so no verdict is "
              "written and the run's client reports it failed (exit 1), not rejected: set `gate: true` on the step "
              "in the pipeline YAML\n")
_COPY = re.compile(r'File "[^"\n]*/ephemeral_component\.py", line (\d+)')  # kfp's copy of the component's source

# Python run by `python3 -c`, inside the sh script's single quotes: no single quote in it. kubepipe absent (or too old
# to have this module): the type and place only, as the message may hold a credential no rule here can hide; the
# step's output as written (no redactor to pass it through).
_BOOT = """import runpy, sys
try:
    from kubepipe.components.user_streams import guard_streams
except ImportError:
    pass
else:
    guard_streams(%s, %d)
try:
    from kubepipe.components.boundary import user_excepthook as hook
except ImportError:
    def hook(file, offset):
        def said(kind, exc, tb):
            import traceback
            mine = [f for f in traceback.extract_tb(tb) if f.filename.endswith("/ephemeral_component.py")]
            at = f" at {file}:{mine[-1].lineno + offset}, in {mine[-1].name}" if mine else ""
            sys.stderr.write(f"kubepipe: {kind.__module__}.{kind.__qualname__} raised{at}; its message is not "
                             "shown: kubepipe, which hides the credentials in it, is not installed in this image "
                             "(give the step image: your project image, kubepipe image build --kind project)\\n")
        return said
%s
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""
_HOOK = "sys.excepthook = hook(%s, %d)"
# a step that can say no: its verdict's context too; where the hook takes none (no kubepipe, or one older than the
# user gate's verdict) the report alone
_GATE_HOOK = """import json
try:
    sys.excepthook = hook(%s, %d, gate=json.loads(%s))
except TypeError:
    sys.excepthook = hook(%s, %d)"""


def guarded_command(command: list, file: str | None, offset: int, gate: dict | None = None) -> list:
    """A python component's container command with kfp's executor run behind the boundary; `file` and `offset`:
    where the copy's lines are in your source (catalog/source_map), None when not known; `gate`: for a step that
    can say no, what its verdict needs besides the run (`profile`: target and pipeline_root, `step`), else None."""
    if not any(isinstance(c, str) and EXECUTOR in c for c in command):  # kfp moved its executor: say so, not skip
        from kubepipe.kfp_private import missing

        raise missing("failure boundary for python steps", f"a python component's command no longer runs "
                      f"`{EXECUTOR}`", "a failing step would print Python's raw traceback, credentials in it shown",
                      stops="compiling for kubeflow and vertex stops here")
    shown = json.dumps(file or "ephemeral_component.py").replace("'", "\\u0027")
    said = json.dumps(json.dumps(gate)).replace("'", "\\u0027")
    hook = _HOOK % (shown, offset) if gate is None else _GATE_HOOK % (shown, offset, said, shown, offset)
    boot = _BOOT % (shown, offset, hook)
    wrapped = f"python3 -c '{boot}' kfp.dsl.executor_main"
    return [c.replace(EXECUTOR, wrapped) if isinstance(c, str) else c for c in command]


def report_failure(exc: BaseException, file: str | None = None, offset: int = 0) -> None:
    """The failure that ends a task, on stderr: `failure_text` (kfp's copy's frames at `file`'s lines, when given)
    and for a ComponentError whether a retry can change it (`mark_not_retried`, once) and the line naming it."""
    from kubepipe.components.errors import NO_RETRY_ENV, ComponentError, GateFailed, failure_text, mark_not_retried
    from kubepipe.secrets import redact_text

    sys.stderr.write(at_user_lines(failure_text(exc), file, offset))
    sys.stderr.flush()
    if not isinstance(exc, ComponentError):
        return
    marker = os.environ.get(NO_RETRY_ENV)
    if not (marker and os.path.exists(marker)):  # a built-in's fail_fast marked it already
        mark_not_retried(exc)
    said = GATE_REJECTED if isinstance(exc, GateFailed) else COMPONENT_ERROR
    print(redact_text(f"{said}{type(exc).__name__}: {exc}"), file=sys.stderr, flush=True)


def at_user_lines(text: str, file: str | None, offset: int) -> str:
    """A traceback's frames of kfp's copy of your source shown at `file`'s lines (as is where `file` is None)."""
    return _COPY.sub(lambda m: f'File "{file}", line {int(m.group(1)) + offset}', text) if file else text


def user_excepthook(file: str | None, offset: int, gate: dict | None = None):
    """A `sys.excepthook` that reports the exception ending the task through `report_failure`; where that fails
    itself, the type and place alone (Python would print the raw traceback after 'Error in sys.excepthook'). With
    `gate` (guarded_command's), first the step's verdict, as `fail_fast(gate=...)` leaves it: written for a
    GateFailed, an earlier attempt's removed for another failure; without it, a GateFailed's report ends with the
    line saying the run reads failed and to set `gate: true` (NOT_A_GATE)."""
    def hook(kind: type[BaseException], exc: BaseException, tb) -> None:
        if gate:
            try:
                from kubepipe.components.errors import leave_verdict

                leave_verdict(exc, run_gate(gate, sys.argv))
            except Exception:  # noqa: BLE001 - the step's failure is reported either way
                sys.stderr.write("kubepipe: the gate's verdict was not written; the run's client will report it as "
                                 "failed (exit 1), not rejected\n")
        try:
            report_failure(exc.with_traceback(tb), file, offset)
            if not gate:
                _say_not_a_gate(exc)
        except Exception:  # noqa: BLE001 - the report must not become a raw traceback
            sys.stderr.write(f"kubepipe: {kind.__module__}.{kind.__qualname__} raised; reporting it failed\n")
    return hook


def _say_not_a_gate(exc: BaseException) -> None:
    """A GateFailed from a step compiled without the run's id (no GateFailed seen in its code, or `gate: false`), its
    verdict not left by a `fail_fast(gate=...)` of its own: one line saying the run reads failed, and what to set."""
    from kubepipe.components.errors import GateFailed, verdict_left

    if isinstance(exc, GateFailed) and not verdict_left(exc):
        sys.stderr.write(NOT_A_GATE)


def run_gate(gate: dict, argv: list) -> dict:
    """`fail_fast`'s gate context: the compiled part (`gate`) and the run's id and name, which KFP and Vertex fill in
    only as a task's inputs (`ctx_run_id`, `ctx_run_name`: the compiler adds them), read from kfp's executor input
    on the command line. An unknown run gives "" (no verdict is written)."""
    try:
        values = json.loads(argv[argv.index("--executor_input") + 1])["inputs"]["parameterValues"]
    except (ValueError, IndexError, KeyError, TypeError):
        values = {}
    return {**gate, "run_id": str(values.get("ctx_run_id") or ""), "run_name": str(values.get("ctx_run_name") or "")}
