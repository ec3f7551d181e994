"""What the retrieval components do with their KFP artifacts (ops.py holds only the signatures)."""

from __future__ import annotations

import json
import time

__all__ = ["chunk_step", "embed_step", "build_index_step", "evaluate_retrieval_step"]


def _write_html(artifact, html: str) -> None:
    from kubepipe.components.report_files import write_report

    write_report(artifact, html)


def chunk_step(documents_path: str, passages, report, *, text_column: str, id_column: str, size: int, overlap: int,
               unit: str, keep_columns: list, base_model: str, max_tokens: int = 0) -> int:
    import numpy as np

    from kubepipe.components.data.io import read_dataset, write_dataset
    from kubepipe.components.pii import redact_value
    from kubepipe.components.retrieval.chunking import chunk_records
    from kubepipe.components.retrieval.report import render_index_report

    df = read_dataset(documents_path)
    tokenizer = None
    if unit == "tokens" or max_tokens:
        from kubepipe.components.training.base_models import resolve_base_model

        tokenizer = str(resolve_base_model(base_model).tokenizer_file)
    out = chunk_records(df, text_column=text_column, id_column=id_column, size=int(size), overlap=int(overlap),
                        unit=unit, tokenizer_file=tokenizer, keep_columns=keep_columns or None,
                        max_tokens=int(max_tokens))
    meta = write_dataset(out, passages, source=documents_path)
    passages.metadata.update({"documents": int(len(df)), "size": int(size), "overlap": int(overlap), "unit": unit,
                              "max_tokens": int(max_tokens)})
    lengths = out["text"].str.split().str.len().to_numpy() if len(out) else np.zeros(1)
    facts = {"documents": int(len(df)), "passages": int(len(out)), "unit": unit, "size": int(size),
             "overlap": int(overlap), **({"max_tokens": int(max_tokens)} if max_tokens else {}), "words per passage (median)": float(np.median(lengths)),
             "words per passage (max)": int(lengths.max()), "content hash": meta["content_hash"]}
    # the sample is the records' own text: a card number or e-mail address in it is masked, as in the data reports
    sample = redact_value(out[["passage_id", "doc_id", "offset", "text"]].head(10).to_dict("records"))
    _write_html(report, render_index_report("Chunked documents", facts, sample))
    return int(len(out))


def embed_step(passages_path: str, embeddings, report, *, model_dir: str, model_uri: str, text_column: str,
               base_model: str, base_model_sha256: str, max_length: int, batch_size: int, device: str) -> dict:
    from kubepipe.components.checks import issues_text
    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.errors import ConfigError
    from kubepipe.components.retrieval.checks import check_embed
    from kubepipe.components.retrieval.embeddings import embed_passages, load_embedder
    from kubepipe.components.retrieval.report import render_index_report

    issues = check_embed({"batch_size": batch_size, "max_length": max_length, "device": device})
    if issues:  # checked again here: run-time values were not seen at validate (batch_size 0 crashed in torch)
        raise ConfigError(issues_text("embed", issues))
    embedder = load_embedder(model_dir=model_dir, model_id=model_uri, base_model=base_model,
                             base_model_sha256=base_model_sha256, max_length=int(max_length), device=device)
    meta = embed_passages(read_dataset(passages_path), embeddings.path, embedder, text_column=text_column,
                          batch_size=int(batch_size))
    rec = meta["embedder"]
    embeddings.metadata.update({"count": meta["count"], "dim": meta["dim"], "embedder_id": rec["id"],
                                "embedder_weights_sha256": rec["weights_sha256"], "truncated": meta["truncated"]})
    facts = {"passages": meta["count"], "dimension": meta["dim"], "embedder": rec["id"], "source": rec["source"],
             "weights sha256": rec["weights_sha256"], "max_length": rec["max_length"],
             "passages longer than max_length (embedded from their start)": meta["truncated"], "device": meta["device"],
             "seconds": meta["seconds"], "passages/s": meta["passages_per_s"]}
    _write_html(report, render_index_report("Embeddings", facts))
    return meta


def build_index_step(embeddings_path: str, index, report, *, method: str, exact_below: int, hnsw: dict) -> str:
    from kubepipe.components.checks import errors_only, issues_text
    from kubepipe.components.errors import ConfigError
    from kubepipe.components.kfp_values import whole_numbers
    from kubepipe.components.retrieval.checks import HNSW_KEYS, check_build_index
    from kubepipe.components.retrieval.index import build_index
    from kubepipe.components.retrieval.report import render_index_report

    hnsw = whole_numbers(hnsw, HNSW_KEYS)  # a whole `dict` param: KFP delivers 16 as 16.0
    issues = errors_only(check_build_index({"method": method, "exact_below": exact_below, "hnsw": hnsw}))
    if issues:  # checked again here: run-time values were not seen at validate (16.5 must not become 16)
        raise ConfigError(issues_text("build-index", issues))
    t0 = time.perf_counter()
    manifest = build_index(embeddings_path, index.path, method=method, exact_below=int(exact_below), hnsw=hnsw)
    seconds = time.perf_counter() - t0
    emb = manifest["embedder"]
    index.metadata.update({"kind": "retrieval-index", "method": manifest["method"], "count": manifest["count"],
                           "dim": manifest["dim"], "embedder_id": emb["id"],
                           "embedder_weights_sha256": emb["weights_sha256"]})
    facts = {"method": manifest["method"], "passages": manifest["count"], "dimension": manifest["dim"],
             "build seconds": round(seconds, 3), "embedder": emb["id"], "embedder weights sha256": emb["weights_sha256"],
             "hnsw": json.dumps(manifest["hnsw"]) if manifest["hnsw"] else "–"}
    _write_html(report, render_index_report("Index", facts))
    return manifest["method"]


def evaluate_retrieval_step(index_path: str, queries_path: str, *, metrics, report, evaluation, **kwargs) -> dict:
    import math

    from kubepipe.components.evaluation.artifacts import write_evaluation
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval
    from kubepipe.components.retrieval.report import render_retrieval_report

    ev = evaluate_retrieval(index_path, queries_path, **kwargs)
    for k, v in sorted(ev["metrics"].items()):
        if math.isfinite(v):
            metrics.log_metric(k, float(v))
    metrics.log_metric("gate_passed", 1.0 if ev["passed"] else 0.0)
    _write_html(report, render_retrieval_report(ev))
    write_evaluation(evaluation, ev)  # the classification gate's record rule: NaN as null
    return ev
