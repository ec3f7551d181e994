"""The served retriever: a `ServedModel` whose forward pass embeds queries and searches an index.

Same server, batching, limits, metrics, readiness and drain as a classifier (model.py); only the pass
and the answers differ:
- `POST /v1/models/NAME:retrieve` `{"query": "...", "top_k": 5}` -> `{"hits": [...]}`, or
  `{"queries": [...], "top_k": 5}` -> `{"results": [[...], ...]}` (routes.py);
- `POST /v1/models/NAME:predict` `{"instances": [...], "top_k": 5}` -> `{"predictions": [[...], ...]}`
  (what deploy's smoke test sends; Vertex AI's `{"instances": [...], "parameters": {"top_k": 5}}` too);
- `POST /v2/models/NAME/infer`: input `text` (BYTES [n]), parameter `top_k`; outputs `ids` (BYTES [n, k],
  document ids), `scores` (FP32 [n, k]) and `records` (BYTES [n, k], each hit as JSON).
A hit is `{passage_id, doc_id, score, text, <record columns>}`, best first (retrieval/retriever.py).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse, RequestedOutput

from kubepipe.components.errors import ModelError
from kubepipe.components.serving.batcher import waits_on_device
from kubepipe.components.serving.model import ServedModel
from kubepipe.components.serving.routes import V1_BODY
from kubepipe.components.checks import did_you_mean
from kubepipe.components.serving.payloads import (
    BadRequest, InputSpec, as_sent, event_data, json_type, known_fields, parse_v1, parse_v2,
)

__all__ = ["ServedRetriever", "RETRIEVAL", "V2_RETRIEVAL_OUTPUTS", "DEFAULT_TOP_K", "top_k_of", "request_top_k",
           "queries_of"]

RETRIEVAL = "retrieval"
V2_RETRIEVAL_OUTPUTS = ("ids", "scores", "records")
DEFAULT_TOP_K = 10
RETRIEVE_FIELDS = ("query", "queries", "top_k")
PREDICT_FIELDS = ("instances", "top_k", "parameters")  # `parameters`: Vertex AI's body (payloads.V1_FIELDS)


def top_k_of(value, where: str = "top_k") -> int:
    from kubepipe.components.retrieval.retriever import MAX_K

    if value is None:
        return DEFAULT_TOP_K
    sent = value  # as the client wrote it: 1e300 is said so, not as its 301 digits
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a V2 parameter may arrive as 5.0
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        got = sent if isinstance(sent, (int, float)) and not isinstance(sent, bool) else json_type(sent)
        raise BadRequest(where, f"expected a whole number from 1 to {MAX_K}, got {got}")
    return value


def request_top_k(params, where: str, top_k=None) -> int:
    """top_k of a request: the body's own `top_k` (V1) or `parameters.top_k` (V2's request parameters, and Vertex
    AI's {instances, parameters}, which it sends as given). A near miss of it there (`topk`, `top-k`) was ignored,
    silently: the default 10 hits."""
    if params is not None and not isinstance(params, dict):
        raise BadRequest(where, f"expected an object, got {json_type(params)}")
    params = params or {}
    for key in params:
        hint = did_you_mean(key, ("top_k",)) if key != "top_k" else None
        if hint:
            raise BadRequest(f"{where}.{key}", f"unknown parameter; {hint}")
    if top_k is None:
        return top_k_of(params.get("top_k"), f"{where}.top_k")
    if "top_k" in params and params["top_k"] != top_k:
        raise BadRequest("top_k", f"{as_sent(top_k)}, but {where}.top_k is {as_sent(params['top_k'])}; send one")
    return top_k_of(top_k)


def queries_of(body, spec: InputSpec) -> tuple[list[str], bool]:
    """The query texts of a `:retrieve` body and whether it held one `query` (vs a `queries` list)."""
    if not isinstance(body, dict):
        raise BadRequest("body", f'expected a JSON object like {{"query": "...", "top_k": 5}}, got {json_type(body)}')
    known_fields(body, RETRIEVE_FIELDS, ":retrieve body takes `query` or `queries`, and `top_k`")
    if ("query" in body) == ("queries" in body):
        raise BadRequest("query", 'send either "query" (one text) or "queries" (a list of texts)')
    one = "query" in body
    if not one and not isinstance(body["queries"], list):
        raise BadRequest("queries", f"expected a list of strings, got {json_type(body['queries'])}")
    try:
        texts = parse_v1({"instances": [body["query"]] if one else body["queries"]}, spec,
                         noun=("query", "queries")).items
    except BadRequest as exc:  # name the field as the client wrote it
        field = exc.field.replace("instances[0]", "query", 1) if one else \
            exc.field.replace("instances", "queries", 1)
        raise BadRequest(field, exc.message, exc.status) from None
    return texts, one


class ServedRetriever(ServedModel):
    """Serves an index artifact (kubepipe-index.json); items in the batcher are (query, top_k)."""

    def load(self) -> bool:
        from kubepipe.components.retrieval.index import set_search_threads
        from kubepipe.components.retrieval.retriever import Retriever
        from kubepipe.components.serving.artifact_loader import resolve_device

        device = resolve_device(self.device)
        self.retriever = Retriever(self.model_dir, device=device)
        self.batcher.on_device = waits_on_device(device)
        # torch's threads and (for an HNSW graph) faiss's OpenMP pool get the server's thread budget, as
        # evaluate-retrieval's query_p99_ms measured them: faiss's default (every core) is slower on a busy box
        set_search_threads(self.threads, self.retriever.index.graph is not None)
        self.model = self.retriever.embedder
        self.spec = InputSpec(task=RETRIEVAL, max_batch_size=self.max_batch_size,
                              max_text_length=self.max_text_length, text_column="query")
        self._labels = None
        for n in (1, self.max_batch_size):
            hits = self._forward([("warm-up query 1234 main street", DEFAULT_TOP_K)] * n, observe=False)
            if len(hits) != n or any(not h for h in hits):
                raise ModelError(f"{self.model_dir}: warm-up failed: the index returned no hits")
        self.ready = True
        return True

    def _forward(self, items: Sequence[Any], observe: bool = True) -> Any:
        """Each (query, top_k) item's hits: this pass's result (ServedModel's are probabilities)."""
        from kubepipe.components.serving import metrics as m

        from kubepipe.components.retrieval.index import use_search_threads

        # faiss's OpenMP count is per thread: this pass runs on the batcher's thread or the loop, not load()'s
        use_search_threads(self.threads, self.retriever.index.graph is not None)
        texts = [q for q, _ in items]
        hits = self.retriever.retrieve_each(texts, [k for _, k in items])  # each request searched at its own top_k
        if observe:
            m.TOKENS.labels(self.name).inc(self.retriever.embedder.tokenizer.count_tokens(texts))
        return hits

    async def retrieve(self, texts: list[str], top_k: int) -> list[list[dict]]:
        """Top-k hits per query through the batcher (the `:retrieve` route)."""
        return await self.batcher.submit([(t, top_k) for t in texts])

    async def preprocess(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            parsed = parse_v2(payload.inputs, self.spec, payload.request_outputs, payload.parameters,
                              known_outputs=V2_RETRIEVAL_OUTPUTS, noun=("query", "queries"))
            k = request_top_k(payload.parameters, "parameters")
            for i, inp in enumerate(payload.inputs or ()):
                if "top_k" in (inp.parameters or {}):  # it was ignored: the default 10 hits
                    raise BadRequest(f"inputs[{i}].parameters.top_k", "top_k is a parameter of the request, not of "
                                     "an input: move it to the body's `parameters`")
            parsed.items = [(t, k) for t in parsed.items]
            return payload, parsed
        if isinstance(payload, (bytes, str)):  # kserve passes non-JSON content types through undecoded
            try:
                payload = json.loads(payload)
            except ValueError:
                pass  # parse_v1 names the problem
        payload = event_data(payload)
        parsed = parse_v1(payload, self.spec, PREDICT_FIELDS,
                          ":predict body of a retriever takes `instances` and `top_k`", ("query", "queries"),
                          raw=V1_BODY.get())
        k = request_top_k(payload.get("parameters"), "parameters", payload.get("top_k"))
        parsed.items = [(t, k) for t in parsed.items]
        return None, parsed

    async def postprocess(self, result, headers=None, response_headers=None):
        request, parsed, hits = result
        if request is None:
            return {"predictions": hits}
        k = max((len(h) for h in hits), default=0)
        ids = np.array([[h["doc_id"] for h in row] + [""] * (k - len(row)) for row in hits], dtype=object)
        scores = np.array([[h["score"] for h in row] + [float("nan")] * (k - len(row)) for row in hits], dtype=np.float32)
        recs = np.array([[json.dumps(h, sort_keys=True) for h in row] + [""] * (k - len(row)) for row in hits],
                        dtype=object)
        binary = bool(getattr(request, "use_binary_outputs", False))
        outs = []
        for name, arr, dtype in (("ids", ids, "BYTES"), ("scores", scores, "FP32"), ("records", recs, "BYTES")):
            o = InferOutput(name, [parsed.n, k], dtype)
            o.set_data_from_numpy(arr.reshape(parsed.n, k), binary_data=binary)
            outs.append(o)
        wanted = None
        if request.request_outputs:
            wanted = [RequestedOutput(o.name, {**(o.parameters or {}),
                                               "binary_data": o.binary_data if o.binary_data is not None else binary})
                      for o in request.request_outputs]
        return InferResponse(response_id=request.id or "", model_name=self.name, infer_outputs=outs,
                             use_binary_outputs=binary, requested_outputs=wanted)

    def get_input_types(self):
        return [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self):
        return [{"name": "ids", "datatype": "BYTES", "shape": [-1, -1]},
                {"name": "scores", "datatype": "FP32", "shape": [-1, -1]},
                {"name": "records", "datatype": "BYTES", "shape": [-1, -1]}]

    def describe(self) -> dict:
        m = self.retriever.manifest if getattr(self, "retriever", None) else {}
        return {"name": self.name, "task": RETRIEVAL, "method": m.get("method"), "passages": m.get("count"),
                "documents": getattr(getattr(self, "retriever", None), "n_docs", None), "dim": m.get("dim"),
                "embedder": (m.get("embedder") or {}).get("id"), "default_top_k": DEFAULT_TOP_K,
                "max_batch_size": self.max_batch_size, "max_text_length": self.max_text_length,
                "device": self.served_device, "search_threads": self._search_threads(), "ready": self.ready}

    def _search_threads(self) -> int | None:
        """faiss's OpenMP threads for an HNSW index (None: exact search, numpy)."""
        if getattr(self, "retriever", None) is None or self.retriever.index.graph is None:
            return None
        import faiss

        return int(faiss.omp_get_max_threads())
