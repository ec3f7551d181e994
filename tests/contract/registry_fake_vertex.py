"""A small fake of the Vertex AI v1 REST API for the Model Registry: upload, get, listVersions, mergeVersionAliases.

Versions are addressed as `models/<id>@<version id or alias>`; merging an alias onto a version
removes it from the others, and `-alias` removes it, as Vertex does.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_LOC = r"/v1/(projects/[^/]+/locations/[^/]+)"
T = "type.googleapis.com/google.cloud.aiplatform.v1."


class FakeVertexModels:
    def __init__(self):
        self.models: dict[str, list[dict]] = {}  # resource name -> versions (oldest first)
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def aliases(self, resource: str) -> dict[str, str]:
        return {a: v["versionId"] for v in self.models.get(resource, []) for a in v["versionAliases"]}

    def _version(self, resource: str, ref: str | None) -> dict | None:
        versions = self.models.get(resource)
        if not versions:
            return None
        if ref is None:
            return next(v for v in versions if "default" in v["versionAliases"])
        return next((v for v in versions if v["versionId"] == ref or ref in v["versionAliases"]), None)

    def handle(self, method: str, path: str, body: dict):
        m = re.fullmatch(_LOC + r"/models:upload", path)
        if m and method == "POST":
            model = dict(body["model"])
            parent = body.get("parentModel")
            resource = parent or f"{m.group(1)}/models/{body.get('modelId') or len(self.models) + 1}"
            if parent and parent not in self.models:
                return 404, _err(404, f"parent model {parent} not found")
            if not parent and resource in self.models:
                return 409, _err(409, f"model {resource} already exists")
            versions = self.models.setdefault(resource, [])
            vid = str(len(versions) + 1)
            aliases = list(model.get("versionAliases") or [])
            if not versions:
                aliases.append("default")
            for a in aliases:  # an alias lives on one version only
                for v in versions:
                    v["versionAliases"] = [x for x in v["versionAliases"] if x != a]
            versions.append({**model, "name": resource, "versionId": vid, "versionAliases": aliases,
                             "versionCreateTime": "2026-01-01T00:00:00Z", "versionUpdateTime": "2026-01-01T00:00:00Z"})
            return 200, {"name": f"{resource}/operations/{len(self.log)}", "done": True,
                         "response": {"@type": T + "UploadModelResponse", "model": resource, "modelVersionId": vid}}
        m = re.fullmatch(_LOC + r"/models/([a-z0-9-]+)(?:@([A-Za-z0-9-]+))?(:\w+)?", path)
        if not m:
            return 404, _err(404, f"no route {method} {path}")
        resource = f"{m.group(1)}/models/{m.group(2)}"
        if resource not in self.models:
            return 404, _err(404, f"model {resource} not found")
        verb = m.group(4)
        if method == "GET" and verb == ":listVersions":
            return 200, {"models": self.models[resource]}
        v = self._version(resource, m.group(3))
        if v is None:
            return 404, _err(404, f"version {m.group(3)} of {resource} not found")
        if method == "GET" and not verb:
            return 200, v
        if method == "POST" and verb == ":mergeVersionAliases":
            for a in body.get("versionAliases", []):
                if a.startswith("-"):
                    if a[1:] == "default":
                        return 400, _err(400, "the default alias cannot be removed")
                    v["versionAliases"] = [x for x in v["versionAliases"] if x != a[1:]]
                    continue
                if not re.fullmatch(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]", a):
                    return 400, _err(400, f"bad alias {a!r}")
                for other in self.models[resource]:
                    other["versionAliases"] = [x for x in other["versionAliases"] if x != a]
                v["versionAliases"].append(a)
            return 200, v
        return 404, _err(404, f"no route {method} {path}")

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _route(self, method):
                from urllib.parse import unquote

                path = unquote(self.path.partition("?")[0])
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}") if n else {}
                with fake._lock:
                    fake.log.append((method, path))
                    code, out = fake.handle(method, path, body)
                data = json.dumps(out).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

        return Handler


def _err(code: int, message: str) -> dict:
    status = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}.get(code, "UNKNOWN")
    return {"error": {"code": code, "message": message, "status": status}}
