"""Table of built-in components: name -> where the component and its check live.

Kept as strings so that listing the catalog imports no component module.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Builtin", "BUILTINS"]


class Builtin(NamedTuple):
    ref: str  # "kubepipe.components.<area>.ops:<function>" (a @dsl.component)
    summary: str
    check: str | None = None  # "module:function" -> list[CheckIssue]
    # Inputs naming a local file or a URI: relative paths resolve against the pipeline file, and
    # remote targets refuse local paths (kubepipe.spec.paths).
    paths: tuple[str, ...] = ()
    # Inputs that are a local file path on the local target only (a name or URI elsewhere).
    local_paths: tuple[str, ...] = ()
    # Path inputs whose file may not be there yet: the step says so and goes on (live-quality's delayed labels), so a
    # local run does not refuse a value naming a missing file up front.
    optional_files: tuple[str, ...] = ()
    reference: str | None = None  # "module:function" -> checks.Reference (allowed values, an example)
    extras: tuple[str, ...] = ("local",)  # what running it here needs (kubepipe.extras; `kubepipe run` checks)
    # Its outputs follow from its inputs alone, so a resumed local run may reuse them (`run --resume`); False for
    # one that reads or changes what lies outside them (the registry's champion, an endpoint, a webhook, the clock).
    reusable: bool = True


BUILTINS: dict[str, Builtin] = {
    # Each area adds its components here, one line each.
    "notify": Builtin("kubepipe.components.notify.ops:notify", "Exit step: record how the run ended; optional webhook (URL from an env var)", "kubepipe.components.notify.checks:check_notify", reference="kubepipe.components.notify.checks:notify_reference", extras=(), reusable=False),
    "load-data": Builtin("kubepipe.components.data.ops:load_data", "Read CSV/Parquet (local, gs://, http) with a time window and sampling into a Dataset", "kubepipe.components.data.checks:check_load", paths=("source",), reference="kubepipe.components.data.checks:load_reference"),
    "validate-data": Builtin("kubepipe.components.data.ops:validate_data", "Great Expectations 1.x gate: fail/warn expectations, HTML report, passthrough dataset", "kubepipe.components.data.checks:check_validate", paths=("suite_path",), reference="kubepipe.components.data.checks:validate_reference"),
    "detect-drift": Builtin("kubepipe.components.data.ops:detect_drift", "Per-column drift vs a reference (PSI, KS); drift_detected output", "kubepipe.components.data.checks:check_drift", reference="kubepipe.components.data.checks:drift_reference"),
    "evaluate": Builtin("kubepipe.components.evaluation.ops:evaluate", "Score a model and the champion on the same holdout; gate on thresholds", "kubepipe.components.evaluation.checks:check_evaluate", reference="kubepipe.components.evaluation.checks:evaluate_reference", reusable=False),
    "register-model": Builtin("kubepipe.components.evaluation.ops:register_model", "Record an evaluated challenger in the model registry; `promote: true` makes a gated one the champion", "kubepipe.components.evaluation.checks:check_register_model", reference="kubepipe.components.evaluation.checks:register_reference", reusable=False),
    "train-torch": Builtin("kubepipe.components.training.ops:train_torch", "Train a PyTorch classifier (hashed n-gram, transformer, pretrained encoder, tabular MLP or your class); distillation; checkpoint/resume, bf16, DDP", "kubepipe.components.training.checks:check_train", paths=("base_model",), reference="kubepipe.components.training.checks:train_reference"),
    "deploy": Builtin("kubepipe.components.deploy.ops:deploy", "Roll out a model (local process, KServe canary, Vertex endpoint); promote the champion or roll back", "kubepipe.components.deploy.checks:check", reference="kubepipe.components.deploy.checks:deploy_reference", extras=("local", "serve"), reusable=False),
    "chunk-documents": Builtin("kubepipe.components.retrieval.ops:chunk_documents", "Split text records into passages (words or tokens, overlap) with stable ids", "kubepipe.components.retrieval.checks:check_chunk", paths=("base_model",), reference="kubepipe.components.retrieval.checks:chunk_reference", extras=("local", "nlp")),
    "embed": Builtin("kubepipe.components.retrieval.ops:embed", "Sentence embeddings of passages: packaged MiniLM or a fine-tuned encoder; mean-pooled, L2-normalised, bf16 on GPU", "kubepipe.components.retrieval.checks:check_embed", paths=("base_model",), reference="kubepipe.components.retrieval.checks:embed_reference", extras=("local", "nlp")),
    "build-index": Builtin("kubepipe.components.retrieval.ops:build_index", "Search index over embeddings (HNSW via faiss, or exact) as a versioned Model with its embedder's id and hash", "kubepipe.components.retrieval.checks:check_build_index", reference="kubepipe.components.retrieval.checks:build_index_reference", extras=("local", "rag")),
    "evaluate-retrieval": Builtin("kubepipe.components.retrieval.ops:evaluate_retrieval", "recall@k, MRR, nDCG@k of an index and the champion index on the same labelled queries; the evaluate gate", "kubepipe.components.retrieval.checks:check_evaluate_retrieval", reference="kubepipe.components.retrieval.checks:evaluate_retrieval_reference", extras=("local", "rag"), reusable=False),
    "validate-outputs": Builtin("kubepipe.components.guardrail.ops:validate_outputs", "Guardrail: a model's or retriever's outputs on probes vs rules (labels, scores, PII such as PANs, p99 latency, length); report, PII masked", "kubepipe.components.guardrail.checks:check_validate_outputs", reference="kubepipe.components.guardrail.checks:validate_outputs_reference"),
    "live-quality": Builtin("kubepipe.components.monitoring.ops:live_quality", "Live metrics of served predictions from delayed labels, per model version in the registry; quality_dropped output", "kubepipe.components.monitoring.checks:check_live_quality", paths=("labels",), optional_files=("labels",), reference="kubepipe.components.monitoring.checks:live_reference", reusable=False),
    "monitor-report": Builtin("kubepipe.components.monitoring.ops:monitor_report", "HTML report of a monitored window: input and prediction drift, live vs offline metrics, latency, decision", "kubepipe.components.monitoring.checks:check_monitor_report", reference="kubepipe.components.monitoring.checks:report_reference", reusable=False),
    "trigger-retrain": Builtin("kubepipe.components.retrain.ops:trigger_retrain", "Start the training pipeline on the same target when drift was detected; cooldown; every decision recorded", "kubepipe.components.retrain.checks:check_trigger", local_paths=("pipeline",), reference="kubepipe.components.retrain.checks:trigger_reference", extras=(), reusable=False),
}
