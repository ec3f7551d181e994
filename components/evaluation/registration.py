"""Records an evaluated challenger in the registry; with `promote`, makes it the champion.

Without promotion a pipeline that has no deploy step never gets a champion, and its relative
gate never engages. `promote: true` moves the champion right after registering a model that
passed the gate, through the registry's compare-and-swap, recorded in the promotion history
with the run id; a pipeline with a deploy step leaves promotion to deploy (after a good rollout).
"""

from __future__ import annotations

import os
from pathlib import Path

from kubepipe.components.errors import ComponentError, GateFailed
from kubepipe.components.evaluation.metric_names import METRICS
from kubepipe.components.registry.aliases import ANY

__all__ = ["register_challenger", "default_model_card"]


def default_model_card(name: str, ev: dict) -> str:
    """A short Markdown model card from the evaluation record."""
    m = ev.get("metrics", {})
    keys = [k for k in METRICS if k in m] or sorted(m)  # a retrieval index: recall@K, mrr, ndcg@K
    labels = ev.get("labels") or []  # a retrieval index has none
    lines = [f"# {name}", "", f"- task: {ev.get('task', '')}",
             *([f"- labels: {', '.join(map(str, labels))}"] if labels else []),
             f"- holdout: {ev.get('holdout', {}).get('path', '')} ({ev.get('holdout', {}).get('rows', '?')} rows)",
             f"- gate: {ev.get('decision', '')}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {m[k]:.4f} |" for k in keys]
    return "\n".join(lines) + "\n"


def _require_evaluated_weights(model_dir: str, ev: dict) -> None:
    """The evaluation must be of this model: `model` from one train step and `evaluation` from the evaluate
    step of another would register weights the gate never saw, with the other model's metrics."""
    from kubepipe.components.training.artifact import SPEC_FILE, read_model_spec

    _require_evaluated_index(model_dir, ev)
    evaluated = (ev.get("model") or {}).get("weights_sha256")
    if not evaluated or not (Path(model_dir) / SPEC_FILE).is_file():  # an older record; an index (no weights)
        return
    here = read_model_spec(model_dir).get("weights_sha256")
    if here and here != evaluated:
        raise ComponentError(
            f"register-model: the evaluation is of another model (weights sha256 {evaluated[:12]}..., evaluated at "
            f"{(ev.get('model') or {}).get('path', '?')}), not of this step's `model` ({model_dir}, weights "
            f"{here[:12]}...); wire `model` from the train step whose model the evaluate step scored")


def _require_evaluated_index(model_dir: str, ev: dict) -> None:
    """An index's files (vectors, passages, graph: kubepipe-index.json's sha256s) must be those evaluate-retrieval
    scored: the weights check above for a model whose `weights` are its vectors and passages."""
    import json

    evaluated = (ev.get("model") or {}).get("index_files")
    manifest = Path(model_dir) / "kubepipe-index.json"  # retrieval.index.INDEX_FILE (that module imports numpy)
    if not evaluated or not manifest.is_file():  # an older record; a classifier
        return
    try:
        here = json.loads(manifest.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError):
        here = None
    if here != evaluated:
        raise ComponentError(
            f"register-model: the evaluation is of another index (evaluated at "
            f"{(ev.get('model') or {}).get('path', '?')}), not of this step's `model` ({model_dir}: its "
            f"{manifest.name} lists other files); wire `model` from the build-index step whose index the "
            "evaluate-retrieval step scored")


def register_challenger(model_dir: str, ev: dict, *, model_name: str, model_card: str = "", registry_uri: str = "",
                        run_id: str = "", code_version: str = "", promote: bool = False, profile: dict | None = None,
                        credentials=None):
    """Register `model_dir` with the evaluation's metrics and audit trail; GateFailed if the gate rejected it.

    With `promote`, the new version becomes the champion (the old one `previous`). A model whose files are already
    a version of `model_name` (this step retried, a run resumed after it, a re-run) is that version: none is
    added, whichever run registered it. The registry is
    `open_registry(registry_uri, profile)`: mirrored onto Vertex AI Model Registry when the profile asks."""
    from kubepipe.components.registry import ChampionMoved, audit_record, open_registry
    from kubepipe.components.registry.version import PROFILE_SOURCE

    if not ev.get("passed"):
        raise GateFailed(f"register-model: the gate rejected this model ({ev.get('decision', '?')}); only models that "
                         "passed are registered. Run this step under `when: ${steps.<evaluate>.outputs.passed} == true`")
    _require_evaluated_weights(model_dir, ev)
    name = model_name or ev.get("model_name") or ""
    _require_gated_as(name, ev)
    meta = (ev.get("model") or {}).get("metadata") or {}
    if not code_version:
        from kubepipe import __version__
        code_version = os.environ.get("KUBEPIPE_CODE_VERSION") or f"kubepipe {__version__}"
    audit = list(ev.get("audit") or []) + [audit_record("register", "", run_id=run_id, decision=ev.get("decision", ""))]
    reg = open_registry(registry_uri or None, profile, credentials=credentials, source=PROFILE_SOURCE)
    mv = reg.register(
        model_dir, name=name, metrics=ev.get("metrics", {}),
        data_hash=str(meta.get("data_hash") or meta.get("dataset_hash") or ""),
        run_id=run_id, code_version=code_version, model_card=model_card or default_model_card(name, ev), audit=audit,
        metadata={"decision": ev.get("decision", ""), "passed": True, "task": ev.get("task", ""), "labels": ev.get("labels", []),
                  "holdout": ev.get("holdout", {}), "champion_at_evaluation": (ev.get("champion") or {}).get("version")},
        reuse_same=True,
    )
    # a step retried after its registration committed (its promote or the Vertex alias sync failed), a run resumed
    # after this step, a re-run: the same bytes are one version, not a duplicate (`previous` the champion's own model)
    if reg.existing:
        print(f"register-model: {name} v{mv.version} already holds these files (registered by run "
              f"{mv.run_id or '?'}); it is this model's version, none was added")
    if not promote:
        return mv
    reason = f"register-model: passed the gate ({ev.get('decision', '')})"
    try:
        return reg.promote(name, mv.version, reason=reason[:500], run_id=run_id, expect=_compared_with(ev, name))
    except ChampionMoved as exc:
        raise ChampionMoved(f"register-model: `{name}` v{mv.version} is registered but not champion: the gate compared "
                            f"it with the champion of its evaluation; {exc}; run the pipeline again (its evaluate "
                            f"compares with the new champion), or `kubepipe models promote {name} {mv.version} "
                            "--reason ...`") from None


def _require_gated_as(name: str, ev: dict) -> None:
    """`kubepipe validate`'s rule at run time (a param may name the model): a gate that compared the model with
    the champion of another name never compared it with `name`'s, so it would register (and promote) unchecked."""
    gated = ev.get("model_name")
    if ev.get("baseline") == "champion" and gated and gated != name:
        raise ComponentError(f"register-model: the evaluation compared the model with the champion of `{gated}`, not "
                             f"of `{name}`: it would be registered as `{name}` without being compared with its own "
                             f"champion; give the evaluate and register-model steps the same model_name, or set "
                             f"`baseline: none` on the evaluate step if this model is not gated against a champion")


def _compared_with(ev: dict, name: str):
    """The champion the gate compared the model with (a version, or None: there was none), which the promotion may
    replace; any, for an evaluation without a champion baseline (or of another name, or an older record): a
    `models promote` between the evaluate step and this one was replaced by a model never compared with it."""
    if ev.get("baseline") != "champion" or ev.get("model_name") != name or "champion" not in ev:
        return ANY
    return (ev.get("champion") or {}).get("version")
