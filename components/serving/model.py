"""The served model: a `kserve.Model` around a training Model artifact, with micro-batching."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import math
import time
from typing import Any, Sequence

import numpy as np
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse, RequestedOutput

from kubepipe.components.errors import ModelError
from kubepipe.components.monitoring.predlog import Record
from kubepipe.components.serving import metrics as m
from kubepipe.components.serving.artifact_loader import load_served_model
from kubepipe.components.serving.batcher import MicroBatcher, QueueTimeout, waits_on_device
from kubepipe.components.serving.padding import pass_overhead_tokens, split_by_width, within_budget
from kubepipe.components.serving.parity import softmax
from kubepipe.components.serving.guard import REQUEST_ID, SMOKE, client_id_ok, watch_while_queued
from kubepipe.components.serving.payloads import (TABULAR, BadRequest, InputSpec, Parsed, answered_error,
                                                  input_spec_of, parse_v1, parse_v2)
from kubepipe.components.serving.routes import V1_BODY
from kubepipe.components.serving.runtime import OnnxRunner, TorchRunner, build_runner

__all__ = ["ServedModel"]

_ARRIVING: contextvars.ContextVar[list] = contextvars.ContextVar("kubepipe_arriving")
# Set by postprocess for a request the prediction log sampled: (request id, items, labels, probabilities),
# the objects the answer was built from, not copies (the log's writer turns them into columns).
_ANSWER: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("kubepipe_answer", default=None)
_WARMUP_TEXT = "warm-up request 1234 main street"
_INLINE_TOKENIZE_ROWS = 4  # ~50 us a row (MiniLM WordPiece, 2 cores): more rows go to a thread
# Requests in a row on one connection after which traffic counts as serial (one client, one request at a time): lone
# passes then skip the batcher's gather. HTTP/1.1 answers a connection's requests in turn, so none of them could
# have shared a pass; any other connection's request ends the run.
SERIAL_RUN = 8


class ServedModel(Model):
    """Loads `model_dir`, warms up, and serves V1 + V2 through one batched forward pass."""

    def __init__(self, name: str, model_dir: str, *, max_batch_size: int = 64, max_wait_ms: float = 2.0,
                 max_text_length: int = 512, device: str = "cpu", forward_thread: str = "auto",
                 runtime: str = "torch", precision: str = "auto", torch_compile: bool = False, threads: int = 1,
                 freeze_gc: bool = True, max_batch_tokens: int = 0, request_timeout_s: float = 0.0,
                 compile_mode: str = "default"):
        super().__init__(name)
        self.model_dir = model_dir
        self.device = device
        self.runtime, self.precision, self.torch_compile, self.threads = runtime, precision, torch_compile, threads
        self.compile_mode = compile_mode
        self.freeze_gc = freeze_gc
        self.gc_frozen = 0  # objects moved out of the collector's reach after warm-up (gc.freeze)
        # encoded batch -> logits on the runtime (runtime.build_runner); None until load()
        self.run: TorchRunner | OnnxRunner | None = None
        self.metrics = m.ModelMetrics(name)  # labelled once: no labels() per request
        self.max_batch_size = max_batch_size
        self.max_text_length = max_text_length
        self.model: Any = None  # training.artifact's LoadedModel (a retriever's: its embedder); None until load()
        self.spec: InputSpec | None = None
        self._arriving = 0  # requests being received or parsed, not yet queued (see guard.RequestGuard)
        self._client: Any = None  # the last request's connection (ASGI scope's client: host, port)
        self._same_client = 0  # requests in a row on that connection before it
        # Passes run on the forward thread (`--forward-thread on`), on the loop (`off`), or `auto`: short passes
        # (median CPU under batcher.INLINE_MAX_S, not on a device) on the loop, gathered so that concurrent
        # requests share them, long ones on the thread (batcher.py, decision 0020).
        self.batcher = MicroBatcher(self._forward, max_batch_size=max_batch_size, max_wait_s=max_wait_ms / 1000.0,
                                    max_batch_tokens=max_batch_tokens, on_batch=self._observe_batch,
                                    arriving=lambda: self._arriving, on_queued=watch_while_queued,
                                    serial=lambda: self._same_client >= SERIAL_RUN,
                                    mode={"off": "inline", "on": "thread"}.get(forward_thread, "adaptive"),
                                    timeout_s=request_timeout_s, arrived=self._arrived_at)
        # Padded encoders (tokenizers): a request is tokenized once, as it arrives, and the batcher forms
        # passes by its rows' widths (length buckets, --max-batch-tokens); None: rows only.
        self._rows = None
        # A padded pass's fixed cost in padded tokens (measured at warm-up; padding.py): passes of rows of mixed
        # widths are cut into sub-passes where that saves more padding than it costs. None: never cut.
        self.pass_overhead_tokens: float | None = None
        self.forward_thread = forward_thread
        self._labels: np.ndarray | None = None
        self.draining = False  # set on SIGTERM: the ready route answers 503, predict still answers
        self.prediction_log = None  # monitoring.predlog.PredictionLog when --log-sink is set

    # ---- life cycle -------------------------------------------------------------------
    def load(self) -> bool:
        """Load the artifact and pass a warm-up; only then is the model ready."""
        device = "cpu" if self.runtime == "onnx" and self.device == "auto" else self.device  # ONNX Runtime: CPU
        self.model = load_served_model(self.model_dir, device)
        self.spec = spec = input_spec_of(self.model, max_batch_size=self.max_batch_size,
                                         max_text_length=self.max_text_length)
        self._labels = np.array([str(x) for x in self.model.labels], dtype=object)
        self.metrics.label_series(self._labels)  # the model's own labels: one series each, looked up now
        self.run = build_runner(self.model, runtime=self.runtime, precision=self.precision,
                                torch_compile=self.torch_compile, threads=self.threads,
                                compile_mode=self.compile_mode, max_rows=self.max_batch_size)
        self.batcher.on_device = waits_on_device(self.model.device)  # ONNX Runtime: loaded on the CPU
        rows_of = getattr(self.model.encoder, "encode_rows", None)  # a user model's encoder may have none
        if spec.task != TABULAR and callable(rows_of) and rows_of([_WARMUP_TEXT]) is not None:
            self._rows = rows_of
        self._warm_up()
        self._warm_buckets()
        if self.freeze_gc:
            # Everything alive now (torch, kserve, the model) lives as long as the server: out of the
            # cyclic collector's sight, a full collection scans the requests' objects only (measured on
            # the flagship model: p99 ~130 ms -> ~30 ms, +10% RPS).
            gc.collect()
            gc.freeze()
            self.gc_frozen = gc.get_freeze_count()
        self.ready = True
        return self.ready

    def _warm_up(self) -> None:
        spec, labels = self.spec, self._labels
        if spec is None or labels is None:  # not an assert: python -O drops those
            raise RuntimeError("warm-up before load(): load() sets the spec and labels first")
        one: list[float] | str = [0.0] * max(1, len(spec.features)) if spec.task == TABULAR else _WARMUP_TEXT
        many = self.max_batch_size
        if self._rows is not None and self.batcher.max_batch_tokens:  # the most rows of this width a pass may take
            many = max(1, min(many, self.batcher.max_batch_tokens // len(self._rows([one])[0])))
        took: dict[int, list[float]] = {1: [], many: []}
        sizes = [1, many, many, many]  # both ends of the range
        if self._rows is not None and not self.torch_compile:
            sizes += [1, 1]  # warm 1-row passes: with the last big ones, the fixed cost of a pass (padding.py)
        for n in sizes:
            items = [one] * n if self._rows is None else self._rows([one] * n)  # the path requests take
            t0 = time.perf_counter()
            probs = self._forward(items, observe=False)
            took[n].append(time.perf_counter() - t0)
            if probs.shape != (n, len(labels)) or not np.isfinite(probs).all():
                raise ModelError(f"{self.model_dir}: warm-up failed: the model returned shape {probs.shape} "
                                 f"(expected {(n, len(labels))}) or non-finite probabilities")
        if len(took[1]) > 1 and self._rows is not None and many > 1:
            # the first of each size is cold (allocations, lazy init): the best of the later ones
            self.pass_overhead_tokens = pass_overhead_tokens(
                min(took[1][1:]), min(took[many][1:]), many, len(self._rows([one])[0]))

    def _warm_buckets(self) -> None:
        """`--compile-mode reduce-overhead`: capture every bucketed shape's CUDA graph now, on the thread the passes
        run on (torch keeps the graphs per thread; `--forward-thread off`: this one, and the loop's passes capture
        theirs on first use)."""
        run, spec = self.run, self.spec
        if isinstance(run, TorchRunner) and run.bucketed and spec is not None:
            tabular = spec.task == TABULAR
            one: Any = [0.0] * max(1, len(spec.features)) if tabular else _WARMUP_TEXT
            sample = self.model.encoder.encode(np.asarray([one], dtype=np.float32) if tabular else [one])
            self.batcher.on_forward_thread(lambda: run.warm_buckets(sample))

    def stop(self) -> None:
        self.ready = False

    # ---- the batched forward pass (runs on the batcher's thread) -------------------------
    def _forward(self, items: Sequence[Any], observe: bool = True) -> np.ndarray:
        """Probabilities of `items`: raw inputs, or rows the encoder already tokenized (`encode_rows`)."""
        spec, run = self.spec, self.run
        if spec is None or run is None:
            raise RuntimeError("a forward pass before load(): load() sets the spec and runner first")
        encoder, counted = self.model.encoder, observe and self.model.has_tokens
        tokens: int | None = None
        if items and isinstance(items[0], np.ndarray) and spec.task != TABULAR:
            widths = list(map(len, items))  # map in C: no Python call a row (as in predict, _pad_rows)
            groups = (split_by_width(widths, self.pass_overhead_tokens)
                      if self.pass_overhead_tokens is not None and len(items) > 1 else None)
            # --max-batch-tokens bounds every pass, a lone request's too (the batcher never splits a request)
            groups = within_budget(widths, groups, self.batcher.max_batch_tokens)
            if groups is not None:
                logits, tokens = self._run_groups(run, items, groups, counted)
            else:
                encoded = encoder.collate_rows(items)
                tokens = self.model.count_tokens(None, encoded) if counted else None
                logits = run(encoded)
        else:  # tokens as defined once by the model (LoadedModel.count_tokens), read in the encoding pass
            inputs = np.asarray(items, dtype=np.float32) if spec.task == TABULAR else items
            encoded, tokens = encoder.encode_counted(inputs) if counted else (encoder.encode(inputs), None)
            logits = run(encoded)
        probs = softmax(logits.astype(np.float32, copy=False))
        if tokens is not None:
            self.metrics.tokens.inc(tokens)
        return probs

    def _run_groups(self, run, items: Sequence[np.ndarray], groups: list[list[int]],
                    counted: bool) -> tuple[np.ndarray, int | None]:
        """(logits, tokens or None) of padded rows cut into sub-passes (`groups` of row indices), each padded to its
        own longest row; the logits back in the rows' order."""
        parts, tokens = [], 0
        for group in groups:
            encoded = self.model.encoder.collate_rows([items[i] for i in group])
            if counted:
                tokens += self.model.count_tokens(None, encoded)
            parts.append(run(encoded))
        stacked = np.concatenate(parts)
        logits = np.empty_like(stacked)
        logits[np.concatenate([np.asarray(g, dtype=np.intp) for g in groups])] = stacked
        return logits, tokens if counted else None

    def _observe_batch(self, rows: int, requests: int, seconds: float, tokens: int = 0) -> None:
        self.metrics.batch_rows.observe(rows)
        self.metrics.batch_requests.observe(requests)
        self.metrics.forward_seconds.observe(seconds)

    # ---- arrivals: requests the server is receiving that have not reached the batcher yet ----
    def arrival(self, client: Any = None) -> list:
        """Count one arriving request on connection `client` (the ASGI scope's: host, port); returns its flag for
        `departed` (guard.RequestGuard calls both)."""
        self._arriving += 1
        if client is not None and client == self._client:
            self._same_client += 1
        else:  # another connection (or one unknown): others may be on the way, passes gather again
            self._client, self._same_client = client, 0
        flag = [True, time.monotonic()]  # its arrival: --request-timeout counts from here
        _ARRIVING.set(flag)
        return flag

    def _arrived_at(self) -> float | None:
        """When the request of this context arrived (time.monotonic), if the guard saw it."""
        flag = _ARRIVING.get(None)
        return flag[1] if flag is not None else None

    def departed(self, flag: list) -> None:
        if flag[0]:
            flag[0] = False
            self._arriving -= 1

    # ---- kserve handlers ----------------------------------------------------------------
    async def __call__(self, body, headers=None, verb=None):
        protocol = "v2" if isinstance(body, InferRequest) else "v1"
        if self.prediction_log is not None:
            t0, wall = time.perf_counter(), time.time()
            _ANSWER.set(None)
        gauge = self.metrics.in_flight
        gauge.inc()
        try:
            result = await (super().__call__(body, headers) if verb is None else super().__call__(body, headers, verb))
        except BadRequest as exc:  # a batch over --max-batch-size is a 413, as a body over --max-body-mb is
            self.metrics.count(protocol, "too_large" if exc.status == 413 else "bad_request")
            raise
        except QueueTimeout:  # --request-timeout: a 503 with Retry-After (routes.py)
            self.metrics.count(protocol, "timed_out")
            raise
        except Exception as exc:
            self.metrics.count(protocol, "error")
            answered = answered_error(exc)
            if answered is exc:
                raise
            raise answered from exc
        finally:
            gauge.dec()
        self.metrics.count(protocol, "ok")
        if self.prediction_log is not None and (answer := _ANSWER.get()) is not None:
            ms = (time.perf_counter() - t0) * 1000.0
            self.prediction_log.offer(Record(answer[0], wall, protocol, ms, answer[1], answer[2], answer[3]))
        return result

    async def preprocess(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            return payload, parse_v2(payload.inputs, self.spec, payload.request_outputs, payload.parameters)
        return None, parse_v1(payload, self.spec, raw=V1_BODY.get())

    def validate(self, payload):
        return payload  # preprocess already validated, naming the field at fault

    def departed_current(self) -> None:
        """The request of this context has left the arrivals (it reached the batcher's queue)."""
        flag = _ARRIVING.get(None)
        if flag is not None:
            self.departed(flag)

    async def predict(self, payload, headers=None):
        request, parsed = payload
        if self._rows is None:
            self.departed_current()  # it is in the batcher's queue now
            probs = await self.batcher.submit(parsed.items)
        else:  # tokenized once, here (off the loop when it is more than a few rows); widths batch it
            items = parsed.items
            rows = (self._rows(items) if len(items) <= _INLINE_TOKENIZE_ROWS
                    else await asyncio.get_running_loop().run_in_executor(None, self._rows, items))
            self.departed_current()
            probs = await self.batcher.submit(rows, list(map(len, rows)))
        return request, parsed, probs

    async def postprocess(self, result, headers=None, response_headers=None):
        request, parsed, probs = result
        best = probs.argmax(axis=1)
        top = probs[np.arange(len(best)), best]
        if not np.isfinite(top).all():  # a NaN row is NaN in every class, its top too
            raise self._not_finite(request, parsed, top)
        labels = self._labels[best]
        # canary analysis reads these on KServe; counted by class index (np.unique on the label strings
        # sorted them: ~25% of the answer's CPU at 32 rows)
        counts = np.bincount(best, minlength=len(self._labels))
        per_label = counts.tolist()
        for i in np.flatnonzero(counts).tolist():
            self.metrics.predicted_at[i].inc(per_label[i])
        if self.prediction_log is not None:
            given = request.id if request is not None else None  # a V2 body's `id`: the header's rule, else its id
            if given and client_id_ok(given):
                REQUEST_ID.set(given)  # the id the response's X-Request-Id says (guard._with_request_id)
            if self.prediction_log.sampled() and not SMOKE.get():
                _ANSWER.set((REQUEST_ID.get(), parsed.items, labels, top))
        if request is None:
            preds = [{"label": lab, "probability": p} for lab, p in zip(labels.tolist(), top.tolist())]
            if parsed.return_probabilities:
                for pred, row in zip(preds, probs.tolist()):
                    pred["probabilities"] = row
            return {"predictions": preds}
        return self._v2_response(request, parsed, labels, probs)

    def _not_finite(self, request, parsed: Parsed, top: np.ndarray) -> BadRequest:
        """The 400 for rows the model answered with NaN: a tabular feature so far from its training values
        that it overflowed float32 once standardised (`merchant_risk: 3e38`). Answered 200 with a null
        probability and the first label before."""
        i = int(np.flatnonzero(~np.isfinite(top))[0])
        where = f"instances[{i}]" if request is None else "inputs[0].data"
        row = "this row" if request is None else f"row {i}"
        enc = self.model.encoder
        if self.spec is None or self.spec.task != TABULAR or not hasattr(enc, "mean"):
            return BadRequest(where, f"the model's probabilities for {row} are not numbers (NaN)")
        return BadRequest(where, f"the model's probabilities for {row} are not numbers: "
                          f"{enc.overflow_note(parsed.items[i])}")

    def _v2_response(self, request: InferRequest, parsed: Parsed, labels: np.ndarray, probs: np.ndarray):
        binary = bool(getattr(request, "use_binary_outputs", False))
        out_label = InferOutput("label", [parsed.n], "BYTES")
        out_label.set_data_from_numpy(labels, binary_data=binary)
        out_probs = InferOutput("probabilities", [parsed.n, probs.shape[1]], "FP32")
        out_probs.set_data_from_numpy(probs.astype(np.float32), binary_data=binary)
        wanted = None
        if request.request_outputs:  # only those, each binary as it asks (else as the request's default)
            wanted = [RequestedOutput(o.name, {**(o.parameters or {}),
                                               "binary_data": o.binary_data if o.binary_data is not None else binary})
                      for o in request.request_outputs]
        return InferResponse(response_id=request.id or "", model_name=self.name,
                             infer_outputs=[out_label, out_probs], use_binary_outputs=binary,
                             requested_outputs=wanted)

    # ---- metadata -----------------------------------------------------------------------
    def get_input_types(self):
        if self.spec is None:
            return []
        if self.spec.task == TABULAR:
            return [{"name": "features", "datatype": "FP32", "shape": [-1, len(self.spec.features)]}]
        return [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self):
        k = len(self._labels) if self._labels is not None else -1
        return [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, k]}]

    @property
    def served_device(self) -> str:
        """The device the passes run on (`--device auto` resolved: cpu or cuda), as the model card says it."""
        return str(getattr(getattr(self, "model", None), "device", self.device))  # before load: as asked

    def describe(self) -> dict:
        """kubepipe's own model card endpoint: task, labels (probability order), limits."""
        return {"name": self.name, "task": self.spec.task if self.spec else None,
                "labels": self._labels.tolist() if self._labels is not None else [],
                "features": list(self.spec.features) if self.spec else [],
                # the key of a text model's V1 objects ({"instances": [{"description": ...}]})
                "text_column": self.spec.text_column if self.spec and self.spec.task != TABULAR else None,
                "max_batch_size": self.max_batch_size, "max_text_length": self.max_text_length,
                "device": self.served_device,
                **(self.run.describe if self.run is not None else {"runtime": self.runtime}),
                "forward": self.batcher.placement, "forward_thread": self.forward_thread, "gc_frozen_objects": self.gc_frozen,
                "pass_overhead_tokens": self._cut_overhead(), "ready": self.ready}

    def _cut_overhead(self) -> float | None:
        """The card's `pass_overhead_tokens`: the measured fixed cost of a pass that decides where passes are cut by
        width (padding.py), rounded; None where passes are never cut (no padding, --torch-compile, or no cost per
        token measured)."""
        cost = self.pass_overhead_tokens
        return round(cost, 1) if cost is not None and math.isfinite(cost) else None
