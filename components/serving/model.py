"""The served model: a `kserve.Model` around a training Model artifact, with micro-batching."""

from __future__ import annotations

import contextvars
import time

import numpy as np
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse, RequestedOutput

from kubepipe.components.errors import ModelError
from kubepipe.components.serving import metrics as m
from kubepipe.components.serving.artifact_loader import load_served_model
from kubepipe.components.serving.batcher import MicroBatcher
from kubepipe.components.serving.payloads import TABULAR, BadRequest, Parsed, input_spec_of, parse_v1, parse_v2

__all__ = ["ServedModel"]

_ARRIVING: contextvars.ContextVar[list] = contextvars.ContextVar("kubepipe_arriving")
_WARMUP_TEXT = "warm-up request 1234 main street"


class ServedModel(Model):
    """Loads `model_dir`, warms up, and serves V1 + V2 through one batched forward pass."""

    def __init__(self, name: str, model_dir: str, *, max_batch_size: int = 64, max_wait_ms: float = 2.0,
                 max_text_length: int = 512, device: str = "cpu", forward_thread: str = "auto"):
        super().__init__(name)
        self.model_dir = model_dir
        self.device = device
        self.max_batch_size = max_batch_size
        self.max_text_length = max_text_length
        self.model = None
        self.spec = None
        self._arriving = 0  # requests being received or parsed, not yet queued (see guard.RequestGuard)
        self.batcher = MicroBatcher(self._forward, max_batch_size=max_batch_size, max_wait_s=max_wait_ms / 1000.0,
                                    on_batch=self._observe_batch, arriving=lambda: self._arriving)
        self.forward_thread = forward_thread
        self._labels: np.ndarray | None = None
        self.draining = False  # set on SIGTERM: the ready route answers 503, predict still answers

    # ---- life cycle -------------------------------------------------------------------
    def load(self) -> bool:
        """Load the artifact and pass a warm-up; only then is the model ready."""
        self.model = load_served_model(self.model_dir, self.device)
        self.spec = input_spec_of(self.model, max_batch_size=self.max_batch_size,
                                  max_text_length=self.max_text_length)
        self._labels = np.array([str(x) for x in self.model.labels], dtype=object)
        self._warm_up()
        self.ready = True
        return self.ready

    def _warm_up(self) -> None:
        if self.spec.task == TABULAR:
            one = [0.0] * max(1, len(self.spec.features))
        else:
            one = _WARMUP_TEXT
        full = []
        for n in (1, self.max_batch_size, self.max_batch_size, self.max_batch_size):  # both ends of the range
            t0 = time.perf_counter()
            probs = self._forward([one] * n, observe=False)
            if n == self.max_batch_size:
                full.append(time.perf_counter() - t0)
            if probs.shape != (n, len(self._labels)) or not np.isfinite(probs).all():
                raise ModelError(f"{self.model_dir}: warm-up failed: the model returned shape {probs.shape} "
                                 f"(expected {(n, len(self._labels))}) or non-finite probabilities")
        # A full pass under ~2 ms costs less than the hop to a thread and back (measured on the
        # flagship model: +12% throughput inline); longer passes go to the thread so the loop
        # keeps parsing requests meanwhile.
        self.warmup_pass_s = sorted(full)[1]
        self.batcher.inline = {"on": False, "off": True}.get(self.forward_thread, self.warmup_pass_s < 0.002)

    def stop(self) -> None:
        self.ready = False

    # ---- the batched forward pass (runs on the batcher's thread) -------------------------
    def _forward(self, items: list, observe: bool = True) -> np.ndarray:
        import torch

        inputs = np.asarray(items, dtype=np.float32) if self.spec.task == TABULAR else items
        with torch.inference_mode():
            batch = self.model.encode(inputs)
            probs = torch.softmax(self.model.forward(batch).float(), dim=-1).numpy()
        if observe:  # tokens as defined once by the model (LoadedModel.count_tokens)
            m.TOKENS.labels(self.name).inc(self.model.count_tokens(inputs))
        return probs

    def _observe_batch(self, rows: int, requests: int, seconds: float, tokens: int = 0) -> None:
        m.BATCH_ROWS.labels(self.name).observe(rows)
        m.BATCH_REQUESTS.labels(self.name).observe(requests)
        m.FORWARD_SECONDS.labels(self.name).observe(seconds)
        m.INSTANCES.labels(self.name).inc(rows)

    # ---- arrivals: requests the server is receiving that have not reached the batcher yet ----
    def arrival(self) -> list:
        """Count one arriving request; returns its flag for `departed` (guard.RequestGuard calls both)."""
        self._arriving += 1
        flag = [True]
        _ARRIVING.set(flag)
        return flag

    def departed(self, flag: list) -> None:
        if flag[0]:
            flag[0] = False
            self._arriving -= 1

    # ---- kserve handlers ----------------------------------------------------------------
    async def __call__(self, body, headers=None, verb=None):
        protocol = "v2" if isinstance(body, InferRequest) else "v1"
        t0 = time.perf_counter()
        gauge = m.IN_FLIGHT.labels(self.name)
        gauge.inc()
        try:
            result = await (super().__call__(body, headers) if verb is None else super().__call__(body, headers, verb))
        except BadRequest:
            m.REQUESTS.labels(self.name, protocol, "bad_request").inc()
            raise
        except Exception:
            m.REQUESTS.labels(self.name, protocol, "error").inc()
            raise
        finally:
            gauge.dec()
        m.REQUESTS.labels(self.name, protocol, "ok").inc()
        m.LATENCY.labels(self.name, protocol).observe(time.perf_counter() - t0)
        return result

    async def preprocess(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            return payload, parse_v2(payload.inputs, self.spec, payload.request_outputs, payload.parameters)
        return None, parse_v1(payload, self.spec)

    def validate(self, payload):
        return payload  # preprocess already validated, naming the field at fault

    async def predict(self, payload, headers=None):
        request, parsed = payload
        flag = _ARRIVING.get(None)
        if flag is not None:
            self.departed(flag)  # it is in the batcher's queue now
        probs = await self.batcher.submit(parsed.items)
        return request, parsed, probs

    async def postprocess(self, result, headers=None, response_headers=None):
        request, parsed, probs = result
        best = probs.argmax(axis=1)
        labels = self._labels[best]
        if request is None:
            top = probs[np.arange(len(best)), best]
            preds = [{"label": lab, "probability": float(p)} for lab, p in zip(labels.tolist(), top.tolist())]
            if parsed.return_probabilities:
                for pred, row in zip(preds, probs.tolist()):
                    pred["probabilities"] = row
            return {"predictions": preds}
        return self._v2_response(request, parsed, labels, probs)

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

    def describe(self) -> dict:
        """kubepipe's own model card endpoint: task, labels (probability order), limits."""
        return {"name": self.name, "task": self.spec.task if self.spec else None,
                "labels": self._labels.tolist() if self._labels is not None else [],
                "features": list(self.spec.features) if self.spec else [],
                "max_batch_size": self.max_batch_size, "max_text_length": self.max_text_length,
                "device": str(getattr(self.model, "device", self.device)),
                "forward": "inline" if self.batcher.inline else "thread", "ready": self.ready}
