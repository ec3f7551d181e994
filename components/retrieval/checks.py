"""Compile-time checks of the retrieval steps' `with:` values (fast; no torch, numpy or faiss)."""

from __future__ import annotations

from kubepipe.components.checks import Allowed, CheckIssue, Reference, device_issues, did_you_mean, model_name_issues
from kubepipe.components.evaluation.gate import BASELINES, BOUNDS, RELATIVE, gate_issues
from kubepipe.components.retrieval.chunking import UNITS
from kubepipe.components.retrieval.metric_names import RETRIEVAL

__all__ = ["check_chunk", "check_embed", "check_build_index", "check_evaluate_retrieval", "chunk_reference",
           "separator_issues", "embed_reference", "build_index_reference", "evaluate_retrieval_reference"]

METHODS = ("auto", "hnsw", "exact")  # index.py's METHODS (that module imports numpy)
HNSW_KEYS = ("connectivity", "expansion_add", "expansion_search")
HNSW_MAX = {"connectivity": 256, "expansion_add": 4096, "expansion_search": 4096}
DEVICES = ("auto", "cpu", "cuda")  # and cuda:N (checks.DEVICE)


def _late(v) -> bool:
    return isinstance(v, str) and "${" in v


def _int_issue(w: dict, key: str, low: int, default=None) -> list[CheckIssue]:
    v = w.get(key, default)
    if v is None or _late(v):
        return []
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        return [CheckIssue((key,), f"must be a whole number >= {low}, got {v!r}", None)]
    return []


def _choice_issue(w: dict, key: str, choices: tuple) -> list[CheckIssue]:
    v = w.get(key)
    if v is None or _late(v) or v in choices:
        return []
    return [CheckIssue((key,), f"must be one of {', '.join(choices)}, got {v!r}", did_you_mean(v, choices))]


def check_chunk(with_values: dict) -> list[CheckIssue]:
    w = with_values or {}
    numbers = _int_issue(w, "size", 1) + _int_issue(w, "overlap", 0) + _int_issue(w, "max_tokens", 0)
    issues = numbers + _choice_issue(w, "unit", UNITS)
    if w.get("max_tokens") and w.get("unit") == "tokens":
        issues.append(CheckIssue(("max_tokens",), "caps passages of words; with unit: tokens, size counts tokens",
                                 "remove max_tokens, or set unit: words"))
    size, overlap = w.get("size", 128), w.get("overlap", 16)
    if not numbers and isinstance(size, int) and isinstance(overlap, int) and overlap >= size:
        issues.append(CheckIssue(("overlap",), f"must be smaller than size ({size}), got {overlap}",
                                 "e.g. size: 128, overlap: 16"))
    if w.get("keep_columns") == []:  # the step reads [] as its default: every column, the opposite of what it says
        issues.append(CheckIssue(("keep_columns",), "an empty list keeps every column of the records (it is the "
                                 "step's default), not none", "leave keep_columns out to copy every column onto each "
                                 "passage, or list the ones to copy (e.g. keep_columns: [name, category]); to copy "
                                 "none, drop the columns upstream"))
    if "base_model" in w and w.get("unit", "words") == "words" and not w.get("max_tokens"):  # its tokenizer counts
        issues.append(CheckIssue(("base_model",), "is ignored with unit: words and no max_tokens (its tokenizer counts "
                                 "`unit: tokens` and max_tokens; the embed step's base_model embeds)",
                                 "remove it, or set unit: tokens, or max_tokens", "warning"))
    return issues


def check_embed(with_values: dict) -> list[CheckIssue]:
    w = with_values or {}
    issues = _int_issue(w, "batch_size", 1) + _int_issue(w, "max_length", 3) + device_issues(w)
    return issues


def check_build_index(with_values: dict) -> list[CheckIssue]:
    w = with_values or {}
    issues = _choice_issue(w, "method", METHODS) + _int_issue(w, "exact_below", 0)
    hnsw = w.get("hnsw") or {}
    if not isinstance(hnsw, dict):
        return issues + [CheckIssue(("hnsw",), "must be a mapping", "e.g. {connectivity: 16, expansion_search: 64}")]
    for k, v in hnsw.items():
        if k not in HNSW_KEYS:
            issues.append(CheckIssue(("hnsw", k), f"unknown HNSW setting `{k}`", did_you_mean(k, HNSW_KEYS)
                                     or f"known: {', '.join(HNSW_KEYS)}"))
        elif not _late(v) and (not isinstance(v, int) or isinstance(v, bool) or not 2 <= v <= HNSW_MAX[k]):
            # the graph holds ~2 x connectivity links a passage: 10^6 of them runs a build out of memory
            issues.append(CheckIssue(("hnsw", k), f"must be a whole number from 2 to {HNSW_MAX[k]}, got {v!r}", None))
    method = w.get("method", "auto")
    if method in ("exact", "hnsw") and "exact_below" in w:  # only `auto` reads it
        issues.append(CheckIssue(("exact_below",), f"is ignored with method: {method} (only `auto` chooses by the "
                                 "passage count)", "remove it, or set method: auto", "warning"))
    if method == "exact" and hnsw:  # no graph is built: the settings were silently unused
        issues.append(CheckIssue(("hnsw",), "is ignored with method: exact (no HNSW graph is built)",
                                 "remove it, or set method: hnsw or auto", "warning"))
    return issues


def separator_issues(w: dict) -> list[CheckIssue]:
    """`separator` splits a cell of several relevant ids: it must be some text ("" cannot split)."""
    v = w.get("separator", "|")
    if _late(v) or (isinstance(v, str) and v):
        return []
    return [CheckIssue(("separator",), f"must be the text between relevant ids in one cell, got {v!r}",
                       "e.g. separator: '|' (a cell like `m001|m007`)")]


def check_evaluate_retrieval(with_values: dict) -> list[CheckIssue]:
    w = with_values or {}
    return gate_issues(w.get("thresholds"), w.get("relative"), None, w.get("baseline", "champion"),
                       w.get("force", False), w.get("force_reason", ""), names=RETRIEVAL) \
        + model_name_issues(w) + device_issues(w) + separator_issues(w)


def chunk_reference() -> Reference:
    return Reference(allowed={"unit": Allowed(UNITS, "tokens: WordPiece tokens of base_model's tokenizer; words: "
                                              "whitespace words, max_tokens caps their tokens")},
                     example="""chunk:
  component: chunk-documents
  inputs: {documents: "${steps.catalogue.outputs.dataset}"}
  with: {text_column: text, id_column: merchant_id, size: 62, overlap: 8, unit: tokens,
         base_model: "package:all-minilm-l6-v2"}  # 62 + [CLS] + [SEP]: the embed step's max_length 64""")


def embed_reference() -> Reference:
    return Reference(allowed={"device": Allowed(DEVICES, "or `cuda:N` (the N-th GPU)"),
                              "base_model": Allowed(note="`package:all-minilm-l6-v2` or a directory (docs/decisions/0011)")},
                     example="""embed:
  component: embed
  inputs: {passages: "${steps.chunk.outputs.passages}"}
  with: {base_model: "package:all-minilm-l6-v2", max_length: 64, batch_size: 128}""")


def build_index_reference() -> Reference:
    return Reference(allowed={"method": Allowed(METHODS, "auto: exact below `exact_below` passages, else hnsw"),
                              "hnsw": Allowed(HNSW_KEYS, "whole numbers from 2: connectivity up to 256, "
                                                         "expansion_add and expansion_search up to 4096")},
                     example="""index:
  component: build-index
  inputs: {embeddings: "${steps.embed.outputs.embeddings}"}
  with: {method: auto, exact_below: 20000, hnsw: {connectivity: 16, expansion_search: 64}}""")


def evaluate_retrieval_reference() -> Reference:
    return Reference(
        allowed={"thresholds": Allowed(RETRIEVAL.choices, f"each `{{{BOUNDS[0]}: x, {BOUNDS[1]}: y}}`; {RETRIEVAL.hint}"),
                 "relative": Allowed(RETRIEVAL.choices, f"each `{{{RELATIVE[0]}: x}}` or `{{{RELATIVE[1]}: y}}`; "
                                     "lower is better for query_p99_ms"),
                 "baseline": Allowed(BASELINES), "device": Allowed(DEVICES, "or `cuda:N` (the N-th GPU)")},
        example="""evaluate_index:
  component: evaluate-retrieval
  inputs: {index: "${steps.index.outputs.index}", queries: "${steps.queries.outputs.dataset}"}
  with:
    model_name: merchant-retriever
    query_column: descriptor
    relevant_column: merchant_id
    thresholds: {recall@5: {min: 0.8}, mrr: {min: 0.6}}
    relative: {ndcg@10: {max_regression: 0.02}}""")
