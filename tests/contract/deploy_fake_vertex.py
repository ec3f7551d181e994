"""A small fake of the Vertex AI REST API (v1) for models, endpoints, deploy/undeploy and predict.

Long-running operations finish at once (done: true), or fail like Vertex does
when a container never passes its health check; the script is keyed by the
uploaded model's `kubepipe-version` label: {"3": {"healthy": False}} or
{"3": {"predict": "fail"}}. Predict picks the deployed model by traffic split
(seeded) and tags the answer with its deployedModelId, as Vertex does.
"""

from __future__ import annotations

import random
import re
import threading

from vertex_rest import LOC, T, VertexRestFake, err


class FakeVertex(VertexRestFake):
    def __init__(self, script: dict | None = None, seed: int = 0):
        super().__init__()
        self.script = script or {}
        self.models: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self.predict_answers: list[str] = []
        self.refuse: dict[str, list[int]] = {}  # an endpoint verb (":undeployModel", or "PATCH") -> its next answers
        self.stall_predict = False  # True: predict calls hang (outside the lock) until the test's client is killed
        self.stalled = threading.Event()  # set once a predict call hangs
        self.release = threading.Event()  # set: hung predict calls end (without an answer)
        self._n = 1000
        self._etags = 0
        self.before_request = None  # called (method, path) before a request is served
        self.pending: dict[str, list[str]] = {}  # endpoint -> its unfinished operations' names
        self._rng = random.Random(seed)

    def _etag(self) -> str:
        self._etags += 1
        return f"etag-{self._etags}"

    def _id(self) -> str:
        self._n += 1
        return str(self._n)

    def dispatch(self, h) -> None:
        if self.before_request:  # outside the lock: a test's other client may run meanwhile (a race)
            self.before_request(h.command, h.path.partition("?")[0])
        if self.stall_predict and h.path.partition("?")[0].endswith(":predict"):
            self.stalled.set()
            self.release.wait(60)  # the client is killed meanwhile; the server's thread answers no one
            return
        super().dispatch(h)

    def _beh(self, model_name: str) -> dict:
        version = self.models[model_name].get("labels", {}).get("kubepipe-version", "")
        return {"healthy": True, "predict": "ok", **self.script.get(version, {})}

    def handle(self, method: str, path: str, body: dict, query: str = ""):
        m = re.fullmatch(LOC + r"/models:upload", path)
        if m and method == "POST":
            name = f"{m.group(1)}/models/{self._id()}"
            # Vertex marks a custom-container model as deployable on dedicated resources; without it aiplatform
            # drops machine_type and the accelerators from the deploy request
            self.models[name] = {**body["model"], "name": name, "supportedDeploymentResourcesTypes": ["DEDICATED_RESOURCES"]}
            return 200, self.operation(name, {"@type": T + "UploadModelResponse", "model": name})
        m = re.fullmatch(LOC + r"/models/(\d+)", path)
        if m and method == "GET":
            return (200, self.models[path[4:]]) if path[4:] in self.models else (404, err(404, "model not found"))
        if m and method == "DELETE":  # refused while any endpoint deploys it, as Vertex does
            if path[4:] not in self.models:
                return 404, err(404, "model not found")
            where = [e["name"] for e in self.endpoints.values() for d in e["deployedModels"] if d["model"] == path[4:]]
            if where:
                return 400, {"error": {"code": 400, "status": "FAILED_PRECONDITION",
                                       "message": f"The Model is deployed to Endpoint {where[0]}; undeploy it first"}}
            del self.models[path[4:]]
            return 200, self.operation(path[4:], {"@type": "type.googleapis.com/google.protobuf.Empty"})
        if m and method == "PATCH":  # UpdateModel: the fields its update mask names
            if path[4:] not in self.models:
                return 404, err(404, "model not found")
            if self.refuse.get("models:PATCH"):
                code = self.refuse["models:PATCH"].pop(0)
                return code, err(code, f"model update refused ({code})")
            mask = re.search(r"updateMask=([\w,.]+)", query)
            for field in (mask.group(1).split(",") if mask else []):
                key = re.sub(r"_(\w)", lambda g: g.group(1).upper(), field)
                self.models[path[4:]][key] = body.get(key)
            return 200, self.models[path[4:]]
        m = re.fullmatch(LOC + r"/endpoints", path)
        if m and method == "GET":
            want = re.search(r'display_name="([^"]*)"', query)
            eps = [e for e in self.endpoints.values() if not want or e.get("displayName") == want.group(1)]
            return 200, {"endpoints": eps}
        if m and method == "POST":  # a user-chosen id (`endpointId`) is created once, as Vertex does
            chosen = re.search(r"(?:^|&)endpoint_?[iI]d=([^&]+)", query)
            if chosen and not re.fullmatch(r"[1-9]\d{0,8}|[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?", chosen.group(1)):
                return 400, err(400, f"invalid endpoint id {chosen.group(1)!r}")
            name = f"{m.group(1)}/endpoints/{chosen.group(1) if chosen else self._id()}"
            if name in self.endpoints:
                return 409, err(409, f"Endpoint {name} already exists")
            self.endpoints[name] = {**body, "name": name, "deployedModels": [], "trafficSplit": {}, "etag": self._etag()}
            return 200, self.operation(name, {"@type": T + "Endpoint", **self.endpoints[name]})
        m = re.fullmatch(r"/(?:v1|ui)/(projects/[^/]+/locations/[^/]+)/endpoints/([\w-]+)/operations", path)
        if m and method == "GET":  # ListOperations (aiplatform's REST transport says /ui/): the unfinished ones a test
            # left (`pending`); the done ones are not listed
            name = f"{m.group(1)}/endpoints/{m.group(2)}"
            return 200, {"operations": [{"name": op, "done": False} for op in self.pending.get(name, [])]}
        m = re.fullmatch(LOC + r"/endpoints/([\w-]+)(:\w+)?", path)
        if not m:
            return 404, err(404, f"no route {method} {path}")
        name = f"{m.group(1)}/endpoints/{m.group(2)}"
        ep = self.endpoints.get(name)
        if ep is None:
            return 404, err(404, "endpoint not found")
        verb = m.group(3)
        code = self.refuse[verb or method].pop(0) if self.refuse.get(verb or method) else 0
        if code:  # 0: this one is answered
            return code, err(code, f"{verb or method} refused ({code})")
        if method == "GET" and not verb:
            return 200, ep
        if method != "GET" and verb != ":predict":  # every change of the endpoint gives it a new etag
            if method == "PATCH" and body.get("etag") and body["etag"] != ep["etag"]:  # read-modify-write refused
                return 409, {"error": {"code": 409, "message": "etag mismatch: the endpoint changed since it was read",
                                       "status": "ABORTED"}}
            ep["etag"] = self._etag()
        if method == "PATCH" and not verb:  # UpdateEndpoint: the fields its update mask names
            mask = re.search(r"updateMask=([\w,.]+)", query)
            fields = [re.sub(r"_(\w)", lambda g: g.group(1).upper(), f)
                      for f in (mask.group(1).split(",") if mask else ["trafficSplit"])]
            split = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
            if "trafficSplit" in fields and split and sum(split.values()) != 100:
                return 400, err(400, f"traffic split must sum to 100: {split}")
            if "trafficSplit" in fields:
                ep["trafficSplit"] = split
            if "labels" in fields:
                ep["labels"] = dict(body.get("labels") or {})
            return 200, ep
        if verb == ":deployModel":
            dm = dict(body["deployedModel"])
            if not self._beh(dm["model"])["healthy"]:
                return 200, self.operation(name, error={"code": 9, "message": "Model server never became ready. "
                                                        "Please make sure the health route returns 200."})
            dm["id"] = self._id()
            ep["deployedModels"].append(dm)
            split = {(dm["id"] if k == "0" else k): int(v) for k, v in (body.get("trafficSplit") or {}).items()}
            ep["trafficSplit"] = split or {dm["id"]: 100}
            return 200, self.operation(name, {"@type": T + "DeployModelResponse", "deployedModel": dm})
        if verb == ":undeployModel":
            ep["deployedModels"] = [d for d in ep["deployedModels"] if d["id"] != body["deployedModelId"]]
            ep["trafficSplit"] = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
            return 200, self.operation(name, {"@type": T + "UndeployModelResponse"})
        if verb == ":predict":
            split = [(k, v) for k, v in ep["trafficSplit"].items() if v > 0]
            if not split:
                return 400, err(400, "endpoint has no traffic split")
            dm_id = self._rng.choices([k for k, _ in split], weights=[v for _, v in split])[0]
            dm = next(d for d in ep["deployedModels"] if d["id"] == dm_id)
            self.predict_answers.append(dm_id)
            if self._beh(dm["model"])["predict"] != "ok":
                return 500, err(500, "Internal error: the model server returned 500")
            return 200, {"predictions": ["label"] * len(body.get("instances", [])), "deployedModelId": dm_id,
                         "model": dm["model"]}
        return 404, err(404, f"no route {method} {path}")
