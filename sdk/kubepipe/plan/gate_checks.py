"""Cross-step checks of an evaluate step's gate against the model it is wired to, at validate time."""

from __future__ import annotations

from typing import Any

__all__ = ["tokens_need_text"]


def tokens_need_text(checks: Any) -> None:
    """`tokens_per_s` in the gate of an evaluate step whose model a train-torch step trains as tabular (its
    `architecture` literal, or the default's task): a row of numbers has no tokens (Encoder.has_tokens), so the
    gate could never have the figure; refused at the rule, as evaluate refuses it at run time."""
    from kubepipe.components.evaluation.metric_names import TABULAR_TOKENS, TABULAR_TOKENS_HINT
    from kubepipe.components.training.models import MODEL_TASKS

    for n in checks.of("evaluate"):
        src = checks.upstream(n, "model")
        if src is None or checks.refs.get(src.step) != "train-torch":
            continue
        arch = checks.with_(src.step, "architecture", "text-classifier")
        if not isinstance(arch, str) or MODEL_TASKS.get(arch) != "tabular":
            continue  # text, a user class or a run-time value: evaluate checks the loaded model
        for rule in ("thresholds", "relative"):
            given = checks.with_(n, rule, None)
            if isinstance(given, dict) and "tokens_per_s" in given:
                checks.errors.append(checks.issue(
                    ("steps", n, "with", rule, "tokens_per_s"),
                    f"{TABULAR_TOKENS} (`{src.step}` trains `architecture: {arch}`)", hint=TABULAR_TOKENS_HINT))
