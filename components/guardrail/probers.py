"""Probers: one model call per probe, returning the records the guardrail's rules judge.

The interface a model kind plugs into (one line in `PROBERS`):

    detect(model_dir) -> bool               is this artifact of my kind? (cheap: a marker file)
    open(model_dir, top_k=..., limit=...) -> Prober    load it once, warmed up (`limit`: the endpoint's
                                            text limit, served_limits.TextLimit, or None)

    Prober.kind          "classifier", "retriever", ...
    Prober.probe_column  the probe column read from a probes dataset when the step sets none
    Prober(probe)        one call, as the model serves it, for one probe (a text, or a row dict for
                         tabular models) -> list of records (dicts): a classifier returns
                         [{label, score}] (score = the predicted label's probability); a retriever
                         its top-k hits, each its record's fields plus `score`
    Prober.fields        optional: the fields every record has (a label rule on another field is a
                         configuration error, named before any probe runs)

The guardrail times each call (so latency is one served call per probe, in the step's process) and
judges every record. A probe is first read by the served endpoint's own input rules (`served_refusal`:
serving/payloads.parse_v1 at the endpoint's text limit, `served_limits`: kubepipe serve's default unless the step
names its `endpoint`): one the endpoint answers with a 400 (a text over --max-text-length, an infinite feature, a
lone surrogate) is refused, naming the probe, the rule and where the limit comes from,
since its output is one the endpoint never returns. The first entry whose `detect` says yes opens the
artifact; the classifier (a kubepipe Model artifact) is the fallback, so its loader's errors are what an
unknown directory gets.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable

from kubepipe.components.pii import redact_shown

__all__ = ["PROBERS", "open_prober", "served_refusal", "served_spec", "refused", "ClassifierProber", "open_classifier",
           "RetrieverProber", "open_retriever", "RETRIEVER_PROBE_COLUMN"]

# (kind, detect "module:function", open "module:function"); the first match wins.
PROBERS: tuple[tuple[str, str, str], ...] = (
    ("retriever", "kubepipe.components.retrieval.index:is_index", "kubepipe.components.guardrail.probers:open_retriever"),
)

RETRIEVER_PROBE_COLUMN = "query"  # evaluate-retrieval's default query_column, the served :retrieve field


def served_refusal(value: Any, spec) -> str:
    """Why the served endpoint refuses `value` as one :predict instance of a model of `spec` (serving/payloads.
    InputSpec), in the server's own words and field, or '' if it takes it."""
    from kubepipe.components.serving.payloads import BadRequest, parse_v1

    try:
        parse_v1({"instances": [value]}, spec)
    except BadRequest as exc:
        return f"{exc.status} at {exc.reason}"
    return ""


def served_spec(task: str, model: Any = None, text_column: str = "text", max_text_length: int | None = None):
    """The InputSpec a model of `task` is served with: `kubepipe serve`'s defaults (what deploy runs), but for the
    endpoint's own text limit when it is given (served_limits)."""
    from kubepipe.components.serving.options import DEFAULTS
    from kubepipe.components.serving.payloads import InputSpec, input_spec_of

    max_text_length = int(DEFAULTS["max_text_length"]) if max_text_length is None else int(max_text_length)
    if model is not None:
        return input_spec_of(model, max_batch_size=1, max_text_length=max_text_length)
    return InputSpec(task=task, max_batch_size=1, max_text_length=max_text_length, text_column=text_column)


def refused(why: str, limit=None, what: str = "this probe") -> str:
    """`served_refusal`'s `why` as said of a probe (naming where the limit of a text over it comes from: a
    served_limits.TextLimit, else kubepipe serve's default)."""
    from kubepipe.components.guardrail.served_limits import default_limit

    source = f" ({(limit or default_limit()).source})" if "characters" in why else ""
    return f"the served endpoint refuses {what} with a {why}{source}"


def _refuse(why: str, limit=None) -> None:
    from kubepipe.components.errors import DataError

    if why:
        raise DataError(f"{refused(why, limit)}, so it never returns an output for it; fix the probe or drop it "
                        "upstream")


def _as_sent(value: Any) -> Any:
    """A probe row's cell as a client's JSON carries it: a missing value (NaN, None, pd.NA) is null."""
    import pandas as pd

    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, (str, bytes, list, dict)) and pd.isna(value):
        return None
    return value


def _resolve(ref: str) -> Callable:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


class ClassifierProber:
    """A kubepipe classifier (text or tabular): one `predict_proba` of one row per probe."""

    kind = "classifier"
    fields = ("label", "score")

    def __init__(self, model, limit=None):
        self.model, self.limit = model, limit
        self.labels = [str(x) for x in model.labels]
        spec = model.input_spec or {}
        self.tabular = model.task == "tabular-classification"
        self.features = [str(c) for c in spec.get("feature_columns") or []]
        self.probe_column = "" if self.tabular else str(spec.get("text_column") or "text")
        self.spec = served_spec(model.task, model, max_text_length=limit.chars if limit else None)

    def inputs(self, probe: Any):
        from kubepipe.components.errors import DataError

        if not self.tabular:
            if isinstance(probe, (dict, list)):  # str() of it would be the text the model reads
                raise DataError(f"a probe for this text model is a text (its `{self.probe_column}`), got "
                                f"{redact_shown(repr(probe))}; write inline_probes as texts")
            text = "" if probe is None else str(probe)
            _refuse(served_refusal(text, self.spec), self.limit)
            return [text]
        import pandas as pd

        row = probe if isinstance(probe, dict) else {}
        missing = [c for c in self.features if c not in row]
        if missing:
            raise DataError(f"a probe for this tabular model needs feature(s) {missing}; probes are rows with "
                            f"columns {self.features} (got {sorted(map(str, row)) if row else redact_shown(repr(probe))})")
        _refuse(served_refusal({c: _as_sent(row[c]) for c in self.features}, self.spec), self.limit)
        return pd.DataFrame([{c: row[c] for c in self.features}])

    def __call__(self, probe: Any) -> list[dict]:
        proba = self.model.predict_proba(self.inputs(probe))[0]
        best = int(proba.argmax())
        return [{"label": self.labels[best], "score": float(proba[best])}]


def open_classifier(model_dir: str, *, limit=None, **_: Any) -> ClassifierProber:
    from kubepipe.components.training.artifact import load_model

    return ClassifierProber(load_model(model_dir), limit)


class RetrieverProber:
    """An index artifact: one `Retriever.retrieve` of one query per probe, the path serving and
    evaluate-retrieval answer through, so the guardrail judges the hits the endpoint would return."""

    kind = "retriever"
    probe_column = RETRIEVER_PROBE_COLUMN

    def __init__(self, retriever, top_k: int, limit=None):
        self.retriever, self.top_k, self.limit = retriever, int(top_k), limit
        # a hit: passage_id, doc_id, offset, text, the record columns the chunk step kept, and score
        self.fields = tuple(str(c) for c in retriever.index.passages.columns) + ("score",)

    def __call__(self, probe: Any) -> list[dict]:
        from kubepipe.components.errors import DataError

        from kubepipe.components.checks import is_blank

        if not isinstance(probe, str):
            raise DataError(f"a retriever's probe is a query text, got {redact_shown(repr(probe))}; write inline_probes "
                            "as texts or set probe_column to a text column")
        if is_blank(probe):  # its 'hits' are the passages nearest to no text: the rules judged them, pass or fail
            raise DataError("a retriever's probe is an empty query, which the served retriever refuses (400: the "
                            "query is empty); fill its text in, or drop it upstream")
        spec = served_spec("retrieval", text_column=self.probe_column,
                           max_text_length=self.limit.chars if self.limit else None)
        _refuse(served_refusal(probe, spec), self.limit)
        return self.retriever.retrieve([probe], self.top_k)[0]


def open_retriever(model_dir: str, *, top_k: int = 5, limit=None, **_: Any) -> RetrieverProber:
    from kubepipe.components.errors import ConfigError
    from kubepipe.components.retrieval.retriever import MAX_K, Retriever

    if not 1 <= int(top_k) <= MAX_K:
        raise ConfigError(f"validate-outputs: top_k must be from 1 to {MAX_K} for a retriever, got {top_k!r}")
    return RetrieverProber(Retriever(model_dir, device="cpu"), top_k, limit)


def open_prober(model_dir: str | os.PathLike, *, top_k: int = 5, limit=None):
    """The prober of whatever kind of artifact `model_dir` holds (see PROBERS); `limit`: the served endpoint's
    text limit (served_limits.TextLimit; None: kubepipe serve's default)."""
    for _kind, detect, opener in PROBERS:
        if _resolve(detect)(model_dir):
            return _resolve(opener)(os.fspath(model_dir), top_k=top_k, limit=limit)
    return open_classifier(os.fspath(model_dir), limit=limit)
