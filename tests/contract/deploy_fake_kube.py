"""A small fake Kubernetes API for InferenceServices, on 127.0.0.1, for contract tests.

It serves create / get / replace / merge-patch / delete under
`/apis/serving.kserve.io/v1beta1/namespaces/NS/inferenceservices[/NAME]` the way
the API server does (generation bumps on spec changes, resourceVersion
conflicts, 404 / 409 Status bodies), and plays the KServe controller: each
generation becomes Ready after `ready_after` GETs, or never, per a script keyed by
the `kubepipe.dev/model-version` annotation. It also plays the ingress:
`/ingress/NS/NAME/TAG/v1/models/M:predict` and `/v2/models/M/ready` answer as a
model server would (or fail, per the script), so the real smoke client runs.
Its responses carry a `Date` header from its own clock, `clock_offset_s` off this machine's (a skewed API server).
The apiextensions API serves KServe's real InferenceService CRD (or 404 / 403, per `crd_status`).
The coordination.k8s.io/v1 API serves Leases (`leases`) as the API server does: create (409 AlreadyExists),
get (404), replace with the resourceVersion read (409 Conflict when it moved; none: 422, as leases allow no
unconditional update; a missing one is created, as leases allow create on update), merge patch, delete; `lease_forbidden` names the verbs answered 403 (RBAC without the rule), `before_lease_write` is called
(method, name) before a write is served, outside the lock (another writer in between).
"""

from __future__ import annotations

import copy
import functools
import re
import threading
from time import time as _server_clock  # bound here: a test that sets a deploying pod's clock leaves the server's
from pathlib import Path

from loopback import JsonHandler, LoopbackServer

# KServe's real CRD from the shared fixtures (tests only): the cluster's apiextensions API serves it.
CRD_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "crds" / "serving.kserve.io_inferenceservices.yaml"
_CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/inferenceservices.serving.kserve.io"


@functools.lru_cache(maxsize=1)
def kserve_crd() -> dict:
    import yaml

    return yaml.load(CRD_FILE.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506

_ISVC = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices(?:/([^/?]+))?$")
_LEASE = re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases(?:/([^/?]+))?$")
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_INGRESS = re.compile(r"^/ingress/([^/]+)/([^/]+)/([^/]+)(/.*)$")


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeKube(LoopbackServer):
    """`script[version] = {"ready_after": N | None, "smoke": "ok" | "fail" | "html", "failed_to_load": bool}`.

    `ready_after: None` = never Ready; `failed_to_load` reports modelStatus FailedToLoad from poll 2.
    """

    def __init__(self, script: dict | None = None, default_ready_after: int = 2, crd: dict | None = None,
                 crd_status: int = 200, clock_offset_s: float = 0.0):
        self.clock_offset_s = clock_offset_s  # the API server's clock against this machine's (its Date headers)
        self.script = script or {}
        self.crd = crd if crd is not None else kserve_crd()
        self.crd_status = crd_status  # 404: KServe not installed; 403: no RBAC to read CRDs
        self.default_ready_after = default_ready_after
        self.objects: dict[tuple[str, str], dict] = {}
        self.polls: dict[tuple[str, str, int], int] = {}
        self.refuse: dict[str, list[int]] = {}  # method -> statuses its next requests answer (403, 409; 0: served)
        self.revisions: dict[tuple[str, str], tuple[str, int]] = {}  # (template, number) of the latest revision
        self.templates: dict[str, str | None] = {}  # revision name -> the model (STORAGE_URI) its template serves
        self.log: list[tuple[str, str]] = []  # (method, path)
        self.before_write = None  # called (method, path) before a PUT/PATCH/POST is served, outside the lock: a race
        self.smoke_requests: list[dict] = []
        self.leases: dict[tuple[str, str], dict] = {}  # coordination.k8s.io/v1 Leases by (namespace, name)
        self.lease_forbidden: set[str] = set()  # verbs on leases answered 403 Forbidden: get, create, update, patch
        self.before_lease_write = None  # called (method, name) before a Lease write is served, outside the lock
        self._rv = 100
        self._lock = threading.Lock()
        self.handler = _Handler

    def serving(self, ns: str, name: str) -> str | None:
        """The model (STORAGE_URI) of the one revision taking all the traffic, once the controller has settled the
        object (three more looks, as three reads would give it); an AssertionError when traffic is split."""
        with self._lock:
            obj = self.objects[(ns, name)]
            for _ in range(3):
                self._status(obj)
            traffic = [t for t in obj["status"]["components"]["predictor"]["traffic"] if t["percent"]]
        assert len(traffic) == 1 and traffic[0]["percent"] == 100, traffic
        return self.templates[traffic[0]["revisionName"]]

    def storage(self, ns: str, name: str) -> str | None:
        """The model (STORAGE_URI) the object's spec names."""
        env = self.objects[(ns, name)]["spec"]["predictor"]["containers"][0].get("env") or []
        return next((e["value"] for e in env if e["name"] == "STORAGE_URI"), None)

    # ---- controller --------------------------------------------------------------------

    def _behaviour(self, obj: dict) -> dict:
        version = (obj["metadata"].get("annotations") or {}).get("kubepipe.dev/model-version", "")
        return {"ready_after": self.default_ready_after, "smoke": "ok", **self.script.get(version, {})}

    def _revision(self, obj: dict) -> str:
        """The Knative revision serving the object's template: a new one only when the template changed (the
        predictor without canaryTrafficPercent, with the annotations KServe copies onto it), as Knative makes them;
        a spec that differs only in its traffic split stays on the revision it had."""
        import json

        pred = {k: v for k, v in obj["spec"]["predictor"].items() if k != "canaryTrafficPercent"}
        template = json.dumps([pred, obj["metadata"].get("annotations") or {}], sort_keys=True)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        last, n = self.revisions.get(key, (None, 0))
        if template != last:
            last, n = template, n + 1
            self.revisions[key] = (last, n)
        revision = f"{key[1]}-predictor-{n:05d}"
        self.templates[revision] = next((e.get("value") for c in pred.get("containers") or []
                                         for e in c.get("env") or [] if e.get("name") == "STORAGE_URI"), None)
        return revision

    def _status(self, obj: dict) -> None:
        """Advance the object's status one poll, like the KServe controller would over time; a status that changed
        is a write, with a resourceVersion of its own (as the controller's status updates are)."""
        before = repr(obj.get("status"))
        self._advance(obj)
        if repr(obj.get("status")) != before:
            self._rv += 1
            obj["metadata"]["resourceVersion"] = str(self._rv)

    def _advance(self, obj: dict) -> None:
        ns, name, gen = obj["metadata"]["namespace"], obj["metadata"]["name"], obj["metadata"]["generation"]
        key = (ns, name, gen)
        self.polls[key] = self.polls.get(key, 0) + 1
        beh = self._behaviour(obj)
        status = obj.setdefault("status", {})
        status["observedGeneration"] = gen
        pred = status.setdefault("components", {}).setdefault("predictor", {})
        revision = self._revision(obj)
        pred["latestCreatedRevision"] = revision
        host = f"{self.url}/ingress/{ns}/{name}"
        status["url"] = f"{host}/main"
        ready = beh["ready_after"] is not None and self.polls[key] >= beh["ready_after"]
        if ready:
            pred["latestReadyRevision"] = revision
            canary = obj["spec"]["predictor"].get("canaryTrafficPercent")
            prev = pred.get("latestRolledoutRevision")
            if canary is None or prev is None:
                pred["latestRolledoutRevision"] = revision
                pred["traffic"] = [{"revisionName": revision, "percent": 100, "latestRevision": True,
                                    "tag": "latest", "url": f"{host}/latest"}]
            else:
                pred["previousRolledoutRevision"] = prev
                pred["traffic"] = [
                    {"revisionName": revision, "percent": canary, "latestRevision": True, "tag": "latest",
                     "url": f"{host}/latest"},
                    {"revisionName": prev, "percent": 100 - canary, "latestRevision": False, "tag": "prev",
                     "url": f"{host}/prev"}]
        if beh.get("failed_to_load") and self.polls[key] >= 2:
            status["modelStatus"] = {"states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
                                     "lastFailureInfo": {"reason": "ModelLoadFailed",
                                                         "message": "safetensors: header too large"}}
        cond = {"type": "Ready", "status": "True" if ready else "False",
                "reason": None if ready else "RevisionMissing",
                "message": None if ready else f"Revision {revision} is not ready (poll {self.polls[key]})"}
        status["conditions"] = [{k: v for k, v in cond.items() if v is not None}]


# ---- HTTP ------------------------------------------------------------------------------


class _Handler(JsonHandler):
    def date_time_string(self, timestamp=None):  # the Date header, on the API server's own clock
        return super().date_time_string(_server_clock() + self.fake.clock_offset_s if timestamp is None else timestamp)

    def _status_body(self, code: int, reason: str, message: str):
        self.send_json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "message": message, "reason": reason, "code": code})

    def serve_request(self) -> None:
        method = self.command
        path = self.path.split("?")[0]
        if self.fake.before_write and method in ("PUT", "PATCH", "POST") and _ISVC.match(path):
            self.fake.before_write(method, path)
        lease = _LEASE.match(path)
        if lease and self.fake.before_lease_write and method in ("PUT", "PATCH", "POST"):
            self.fake.before_lease_write(method, lease.group(2))
        with self.fake._lock:
            self.fake.log.append((method, path))
            if path == _CRD and method == "GET":
                if self.fake.crd_status != 200:
                    reason = {404: "NotFound", 403: "Forbidden"}.get(self.fake.crd_status, "Error")
                    return self._status_body(self.fake.crd_status, reason, f"customresourcedefinitions {reason}")
                return self.send_json(200, self.fake.crd)
            if lease:
                return self._lease(method, *lease.groups())
            m = _INGRESS.match(path)
            if m:
                return self._ingress(method, *m.groups())
            m = _ISVC.match(path)
            if not m:
                return self._status_body(404, "NotFound", f"no route {path}")
            return self._isvc(method, m.group(1), m.group(2))

    def _ingress(self, method, ns, name, tag, rest):
        obj = self.fake.objects.get((ns, name))
        if obj is None:
            return self.send_json(404, {"error": "no such service"})
        beh = self.fake._behaviour(obj)
        body = self.read_json() if method == "POST" else None
        self.fake.smoke_requests.append({"tag": tag, "path": rest, "body": body})
        if beh["smoke"] == "html" and not rest.endswith("/ready"):  # a proxy's page in front of the model server
            page = b"<html><body>Sign in to continue</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            return self.wfile.write(page)
        if beh["smoke"] not in ("ok", "html"):
            return self.send_json(500, {"error": "model crashed on input"})
        if rest.endswith("/ready"):
            return self.send_json(200, {"name": name, "ready": True})
        if rest.endswith(":predict") and isinstance(body, dict):
            return self.send_json(200, {"predictions": ["label"] * len(body.get("instances", []))})
        if rest.endswith("/infer") and isinstance(body, dict):  # Open Inference Protocol (Triton)
            rows = body["inputs"][0]["shape"][0]
            return self.send_json(200, {"model_name": name, "outputs": [
                {"name": "logits", "shape": [rows, 4], "datatype": "FP32", "data": [0.0] * rows * 4}]})
        return self.send_json(404, {"error": f"no route {rest}"})

    def _isvc(self, method, ns, name):
        key = (ns, name)
        obj = self.fake.objects.get(key)
        if method == "POST" and name is None:
            body = self.read_json()
            key = (ns, body["metadata"]["name"])
            if key in self.fake.objects:
                return self._status_body(409, "AlreadyExists", f"{key[1]} already exists")
            self.fake._rv += 1
            body["metadata"].update(namespace=ns, generation=1, resourceVersion=str(self.fake._rv),
                                    uid=f"uid-{self.fake._rv}")
            body.pop("status", None)
            self.fake.objects[key] = body
            return self.send_json(201, body)
        if obj is None:
            return self._status_body(404, "NotFound", f'inferenceservices "{name}" not found')
        code = self.fake.refuse[method].pop(0) if self.fake.refuse.get(method) else 0
        if code:  # 0: this one is answered
            reason = {403: "Forbidden", 409: "Conflict"}.get(code, "InternalError")
            return self._status_body(code, reason, f"{method} refused ({reason})")
        if method == "GET":
            self.fake._status(obj)
            return self.send_json(200, obj)
        if method == "DELETE":
            del self.fake.objects[key]
            self.fake.revisions.pop(key, None)  # its Knative service goes with it
            return self.send_json(200, {"kind": "Status", "status": "Success"})
        body = self.read_json()
        if method == "PUT":
            if body["metadata"].get("resourceVersion") != obj["metadata"]["resourceVersion"]:
                return self._status_body(409, "Conflict", "the object has been modified")
            new = copy.deepcopy(body)
            new["status"] = obj.get("status", {})
        elif method == "PATCH":
            if "merge-patch" not in (self.headers.get("Content-Type") or ""):
                return self._status_body(415, "UnsupportedMediaType", "merge-patch only")
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != obj["metadata"]["resourceVersion"]:  # a patch's precondition
                return self._status_body(409, "Conflict", "the object has been modified")
            new = merge_patch(obj, body)
        else:
            return self._status_body(405, "MethodNotAllowed", method)
        self.fake._rv += 1
        new["metadata"].update(namespace=ns, resourceVersion=str(self.fake._rv),
                               generation=obj["metadata"]["generation"])
        if new["spec"] != obj["spec"]:
            new["metadata"]["generation"] += 1
        self.fake.objects[key] = new
        return self.send_json(200, new)

    def _lease(self, method, ns, name):
        """coordination.k8s.io/v1 Leases, as the API server answers for them."""
        verb = _VERBS.get(method, method.lower())
        if verb in self.fake.lease_forbidden:  # the service account's Role has no rule for leases
            what = f'leases.coordination.k8s.io "{name}"' if name else "leases.coordination.k8s.io"
            return self._status_body(403, "Forbidden", f'{what} is forbidden: User "system:serviceaccount:kubeflow:'
                                     f'pipeline-runner" cannot {verb} resource "leases" in API group '
                                     f'"coordination.k8s.io" in the namespace "{ns}"')
        leases = self.fake.leases
        if method == "POST" and name is None:
            body = self.read_json()
            key = (ns, body["metadata"]["name"])
            if key in leases:
                return self._status_body(409, "AlreadyExists", f'leases.coordination.k8s.io "{key[1]}" already exists')
            self.fake._rv += 1
            body["metadata"].update(namespace=ns, resourceVersion=str(self.fake._rv), uid=f"uid-{self.fake._rv}")
            leases[key] = body
            return self.send_json(201, body)
        key = (ns, name)
        obj = leases.get(key)
        if method == "PUT" and obj is None and name is not None:  # leases allow create on update
            body = self.read_json()
            self.fake._rv += 1
            body["metadata"].update(namespace=ns, name=name, resourceVersion=str(self.fake._rv),
                                    uid=f"uid-{self.fake._rv}")
            leases[key] = body
            return self.send_json(201, body)
        if obj is None or name is None:
            return self._status_body(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
        if method == "GET":
            return self.send_json(200, obj)
        if method == "DELETE":
            del leases[key]
            return self.send_json(200, {"kind": "Status", "status": "Success"})
        body = self.read_json()
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if method == "PUT":
            if body["metadata"].get("name") != name:
                return self._status_body(400, "BadRequest", "the name of the object does not match the name on the URL")
            if wanted is None:  # leases allow no unconditional update
                return self._status_body(422, "Invalid", "metadata.resourceVersion: Invalid value: 0x0: must be "
                                         "specified for an update")
            new = copy.deepcopy(body)
        elif method == "PATCH" and "merge-patch" in (self.headers.get("Content-Type") or ""):
            new = merge_patch(obj, body)
        else:
            return self._status_body(405, "MethodNotAllowed", method)
        if wanted is not None and wanted != obj["metadata"]["resourceVersion"]:  # a write's precondition
            return self._status_body(409, "Conflict", f'Operation cannot be fulfilled on leases.coordination.k8s.io '
                                     f'"{name}": the object has been modified; please apply your changes to the '
                                     "latest version and try again")
        self.fake._rv += 1
        new["metadata"].update(namespace=ns, name=name, uid=obj["metadata"]["uid"], resourceVersion=str(self.fake._rv))
        leases[key] = new
        return self.send_json(200, new)
