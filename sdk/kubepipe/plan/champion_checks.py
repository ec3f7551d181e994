"""Validate-time checks that the champion a gate compares with is the model the pipeline registers, deploys and
promotes (`checks` is pipeline_checks' _Checks): a register-model or deploy step under another model_name than the
one its gate compared with registered, served and promoted a model never compared with its own champion.
"""

from __future__ import annotations

from typing import Any, Collection

__all__ = ["registers_what_was_gated", "deploys_what_was_registered", "champion_can_be_set"]


def registers_what_was_gated(checks: Any) -> set[str]:
    """A register-model step names the model whose champion its evaluation was compared with: under another
    name the version (and its promotion) was never compared with that model's champion. The evaluate steps
    found, so that champion_can_be_set does not warn about them again."""
    pipeline, found = checks.spec.metadata.name, set[str]()
    for n in checks.of("register-model"):
        src = checks.upstream(n, "evaluation")
        if src is None or checks.refs.get(src.step) not in ("evaluate", "evaluate-retrieval"):
            continue
        if checks.with_(src.step, "baseline", "champion") != "champion":
            continue  # baseline: none compares with no champion, whatever the name
        gated = checks.with_(src.step, "model_name", "") or pipeline
        registered = checks.with_(n, "model_name", "") or pipeline
        if checks.UNKNOWN in (gated, registered) or gated == registered:
            continue
        found.add(src.step)

        def at(step: str, name: str) -> str:
            given = "model_name" in checks.spec.steps[step].with_
            return f"steps.{step}.with.model_name" + ("" if given else f" (not set: the pipeline's name `{name}`)")
        checks.errors.append(checks.issue(
            ("steps", n, "with", "model_name") if "model_name" in checks.spec.steps[n].with_ else ("steps", n),
            f"`{n}` registers `{registered}` ({at(n, registered)}) with the evaluation of `{src.step}`, which "
            f"compared the model with the champion of `{gated}` ({at(src.step, gated)}): `{registered}` would "
            f"be registered{' and promoted' if checks.with_(n, 'promote', False) is not False else ''} without "
            f"being compared with its own champion",
            hint=f"write the same model_name in both steps (the model this pipeline trains), or set `baseline: "
                 f"none` on `{src.step}` if this model is not to be gated against a champion"))
    return found


def deploys_what_was_registered(checks: Any) -> None:
    """`version: ${steps.R.outputs.version}` is a version number of the model register step R registered: a
    deploy step naming another model served (and promoted) that model's version of the same number, never
    gated."""
    pipeline = checks.spec.metadata.name
    for n in checks.of("deploy"):
        src = checks.upstream(n, "version")
        if src is None or checks.refs.get(src.step) != "register-model":
            continue
        registered, deployed = checks.with_(src.step, "model_name", "") or pipeline, checks.with_(n, "model_name")
        if checks.UNKNOWN in (registered, deployed) or registered == deployed:
            continue
        given = ("" if "model_name" in checks.spec.steps[src.step].with_
                 else f" (not set: the pipeline's name `{pipeline}`)")
        checks.errors.append(checks.issue(
            ("steps", n, "with", "model_name"),
            f"`{n}` deploys version ${{steps.{src.step}.outputs.version}} of `{deployed}` "
            f"(steps.{n}.with.model_name), but `{src.step}` registers that version number under `{registered}` "
            f"(steps.{src.step}.with.model_name{given}): it would serve and promote `{deployed}`'s version of "
            "that number, a model the gate never scored",
            hint="write the same model_name in both steps"))


def champion_can_be_set(checks: Any, reported: Collection[str] = ()) -> None:
    """A warning for each evaluate step (baseline: champion) whose champion nothing here can set (another pipeline
    or `kubepipe models promote` may); `reported`: evaluate steps registers_what_was_gated already named."""
    pipeline = checks.spec.metadata.name
    setters: set[str | None] = set()  # model names a step can promote; None = unknown until run time
    for n in checks.of("deploy"):
        name = checks.with_(n, "model_name")
        setters.add(None if name is checks.UNKNOWN else name)
    for n in checks.of("register-model"):
        if checks.with_(n, "promote", False) is not False:
            name = checks.with_(n, "model_name", "") or pipeline
            setters.add(None if name is checks.UNKNOWN else name)
    if None in setters:
        return
    for n in checks.of("evaluate") + checks.of("evaluate-retrieval"):  # the same gate, the same champion rule
        if n in reported or checks.with_(n, "baseline", "champion") != "champion":
            continue
        name = checks.with_(n, "model_name", "") or pipeline
        if name is checks.UNKNOWN or name in setters:
            continue
        checks.warnings.append(checks.issue(
            ("steps", n, "with", "baseline") if "baseline" in checks.spec.steps[n].with_ else ("steps", n),
            f"`{n}` compares with the champion of `{name}`, but nothing in this pipeline can set it (no deploy "
            "step, no register-model with `promote: true` for that model): every run is a first run",
            hint=("set `model_name` to the model this pipeline promotes ("
                  + ", ".join(f"`{s}`" for s in sorted(map(str, setters))) + ")" if setters
                  else "add `promote: true` to the register-model step")
            + ", or set `baseline: none`; ignore this if another pipeline or `kubepipe models promote` sets the "
              "champion",
            severity="warning"))
