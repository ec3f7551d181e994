"""KFP components `chunk-documents`, `embed`, `build-index`, `evaluate-retrieval`: thin shims over
kubepipe.components.retrieval.steps."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["chunk_documents", "embed", "build_index", "evaluate_retrieval"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def chunk_documents(
    documents: Input[Dataset],
    passages: Output[Dataset],
    report: Output[HTML],
    text_column: str = "text",
    id_column: str = "id",
    size: int = 128,
    overlap: int = 16,
    unit: str = "words",
    keep_columns: list = [],  # noqa: B006 - KFP reads defaults from the signature
    base_model: str = "package:all-minilm-l6-v2",
    max_tokens: int = 0,
) -> NamedTuple("Outputs", [("passages_count", int)]):
    """Split text records into passages of `size` words or tokens, `overlap` shared; stable passage ids.

    Args:
        documents: The records (one document each).
        text_column: The column holding the text to split.
        id_column: The column identifying a record (unique); passage ids derive from it and the offset.
        size: Units per passage.
        overlap: Units shared by consecutive passages (0 <= overlap < size).
        unit: `words` (whitespace-delimited) or `tokens` (WordPiece tokens of `base_model`'s tokenizer).
        keep_columns: Record columns copied onto every passage (left out: all of them; `[]` is refused).
        base_model: The tokenizer's model for `unit: tokens` or `max_tokens` (`package:all-minilm-l6-v2` or a
            directory).
        max_tokens: With `unit: words`, a passage also ends before its words pass this many tokens of
            `base_model`'s tokenizer (0: no cap); the embed step's max_length - 2 keeps every passage whole.

    Returns:
        passages: passage_id, doc_id, offset (characters), text and the kept columns.
        report: HTML: counts, passage length distribution, sample passages.
        passages_count: How many passages were written.
    """
    from collections import namedtuple

    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.retrieval.steps import chunk_step

    with fail_fast():
        n = chunk_step(documents.path, passages, report, text_column=text_column, id_column=id_column, size=size,
                       overlap=overlap, unit=unit, keep_columns=list(typed(keep_columns)), base_model=base_model,
                       max_tokens=max_tokens)
    return namedtuple("Outputs", ["passages_count"])(n)


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def embed(
    passages: Input[Dataset],
    embeddings: Output[Artifact],
    report: Output[HTML],
    model: Input[Model] = None,
    text_column: str = "text",
    base_model: str = "package:all-minilm-l6-v2",
    base_model_sha256: str = "",
    max_length: int = 128,
    batch_size: int = 64,
    device: str = "auto",
):
    """Embed passages with a sentence encoder: mean pooling, L2-normalised; batched, bf16 on GPU.

    Args:
        passages: The passages (a chunk-documents step's output, or any dataset with a text column and a
            `doc_id` column naming the document of each passage).
        model: Optional fine-tuned `pretrained-encoder` Model (e.g. from the registry); its encoder is used.
        text_column: The column to embed.
        base_model: Without `model`: `package:all-minilm-l6-v2` (the packaged MiniLM) or a directory with
            config.json, tokenizer.json, model.safetensors.
        base_model_sha256: Expected sha256 of a directory's model.safetensors (the package's is pinned).
        max_length: Tokens per passage incl. [CLS]/[SEP]; longer passages are truncated (also with `model`).
        batch_size: Passages per forward pass.
        device: `auto` (CUDA when present), `cpu` or `cuda`.

    Returns:
        embeddings: Directory: vectors.npy (float32, unit rows), passages.parquet, the embedder's files.
        report: HTML: model id and hash, count, dimension, passages/s.
    """
    from kubepipe.components.errors import fail_fast
    from kubepipe.components.retrieval.steps import embed_step

    with fail_fast():
        embed_step(passages.path, embeddings, report, model_dir=model.path if model is not None else "",
                   model_uri=model.uri if model is not None else "", text_column=text_column, base_model=base_model,
                   base_model_sha256=base_model_sha256, max_length=max_length, batch_size=batch_size, device=device)


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def build_index(
    embeddings: Input[Artifact],
    index: Output[Model],
    report: Output[HTML],
    method: str = "auto",
    exact_below: int = 20000,
    hnsw: dict = {},  # noqa: B006
) -> NamedTuple("Outputs", [("method", str)]):
    """Build a search index over embedded passages: HNSW (faiss) or exact; a versioned Model artifact.

    Args:
        embeddings: An embed step's output.
        method: `auto` (exact below `exact_below` passages, else HNSW), `hnsw` or `exact`.
        exact_below: The passage count from which `auto` builds HNSW.
        hnsw: HNSW settings: connectivity (M, 16), expansion_add (efConstruction, 128), expansion_search (efSearch, 64).

    Returns:
        index: Model folder: kubepipe-index.json (method, embedder id and weights sha256, file hashes),
            vectors.npy, passages.parquet, embedder/, index.faiss (HNSW).
        report: HTML: method, counts, build time, embedder.
        method: The method built (`hnsw` or `exact`).
    """
    from collections import namedtuple

    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.retrieval.steps import build_index_step

    with fail_fast():
        chosen = build_index_step(embeddings.path, index, report, method=method, exact_below=exact_below,
                                  hnsw=dict(typed(hnsw)))
    return namedtuple("Outputs", ["method"])(chosen)


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def evaluate_retrieval(
    index: Input[Model],
    queries: Input[Dataset],
    metrics: Output[Metrics],
    report: Output[HTML],
    evaluation: Output[Artifact],
    query_column: str = "query",
    relevant_column: str = "relevant",
    separator: str = "|",
    thresholds: dict = {},  # noqa: B006
    relative: dict = {},  # noqa: B006
    baseline: str = "champion",
    model_name: str = "",
    force: bool = False,
    force_reason: str = "",
    fail_on_reject: bool = False,
    device: str = "cpu",
    ctx_registry_uri: str = "",
    ctx_pipeline_name: str = "",
    ctx_profile: dict = {},  # noqa: B006 - KFP needs literal defaults
    ctx_run_id: str = "",
    ctx_run_name: str = "",
    ctx_step: str = "",
) -> NamedTuple("Outputs", [("passed", bool), ("decision", str)]):
    """Score the index and the champion index on the same labelled queries; gate as `evaluate` does.

    Args:
        index: The candidate index (a build-index step's output).
        queries: Labelled queries: a query text column and the relevant document ids.
        query_column: The column holding the query text.
        relevant_column: The column holding the relevant document id(s), `separator`-joined.
        separator: Splits several relevant ids in one cell.
        thresholds: Absolute bounds: `{recall@10: {min: 0.9}, query_p99_ms: {max: 50}}`.
        relative: Bounds against the champion on the same queries: `{ndcg@10: {max_regression: 0.01}}`.
        baseline: `champion` (compare with the registry's champion index) or `none`.
        model_name: Registry name of the champion (default: the pipeline name).
        force: Pass whatever the checks say (audited; needs force_reason).
        force_reason: Why the gate was forced (kept in the audit record).
        fail_on_reject: Fail the step on a reject instead of returning passed=false.
        device: Where queries are embedded: `cpu`, `cuda` or `auto`.

    Returns:
        metrics: recall@K, mrr, ndcg@K, query_p99_ms of the candidate, and gate_passed.
        report: HTML report: decision, gate checks, candidate vs champion, missed queries.
        evaluation: The evaluation as JSON (register-model reads it).
        passed: Whether the gate passed (for `when:`).
        decision: The gate's reason: `promote: ...`, `reject: ...`, `first-run: ...` or `forced: ...`.
    """
    from collections import namedtuple

    from kubepipe.components.errors import GateFailed, fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.retrieval.steps import evaluate_retrieval_step

    with fail_fast(gate=dict(profile=ctx_profile, run_id=ctx_run_id, run_name=ctx_run_name, step=ctx_step)):
        ev = evaluate_retrieval_step(
            index.path, queries.path, metrics=metrics, report=report, evaluation=evaluation, query_column=query_column,
            relevant_column=relevant_column, separator=separator, thresholds=typed(thresholds), relative=typed(relative),
            baseline=baseline, model_name=model_name or ctx_pipeline_name, registry_uri=ctx_registry_uri,
            force=force, force_reason=force_reason, device=device)
        print(ev["decision"])
        if fail_on_reject and not ev["passed"]:
            raise GateFailed(ev["decision"], numbers=ev["metrics"])
    return namedtuple("Outputs", ["passed", "decision"])(ev["passed"], ev["decision"])
