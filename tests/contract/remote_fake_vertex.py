"""A small fake of the Vertex AI REST API (v1) + the bits of GCS JSON API that aiplatform touches.

Driven by the real google-cloud-aiplatform client with `api_transport="rest"` and an
`http://127.0.0.1:PORT` api_endpoint (the REST transport keeps an explicit http:// scheme).
`STORAGE_EMULATOR_HOST` points google-cloud-storage's pipeline-root bucket check here too.
Jobs advance one state per GET: PENDING -> RUNNING -> SUCCEEDED / FAILED (fail_task).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

from loopback import JsonHandler, LoopbackServer


@dataclass
class Request:
    method: str
    path: str
    query: dict
    body: dict | None
    headers: dict = field(default_factory=dict)  # lowercased names

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PATCH", "DELETE", "PUT") and not self.path.startswith("/storage")


class FakeVertex(LoopbackServer):
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
        self.fail_task: str | None = None
        self.on_fail = None  # called once per job as its task fails, (job id, task): what the task did first
        self.forbid: str | None = None  # a path suffix answered 403 PERMISSION_DENIED
        self.objects: dict[str, bytes] = {}  # gs://bucket/name -> bytes, for a storage client's download
        self.packages: dict[str, bytes] = {}  # /ar/<project>/<repo>/<package>/<tag> -> an Artifact Registry file
        self.package_auth: list[str | None] = []  # the Authorization header of each package download
        # "METHOD /path-suffix" -> (status, content type, body): what a proxy or a broken server answers instead
        self.raw: dict[str, tuple[int, str, bytes]] = {}
        self.page_size = 100  # the jobs of a listing page when the request gives no pageSize
        self.loop_token: str | None = None  # every listing page gives this next token again (a looping proxy)
        self._n = itertools.count(1)

    def api(self) -> list[Request]:
        return [r for r in self.requests if r.path.startswith("/v1/")]

    def mutations(self) -> list[Request]:
        return [r for r in self.requests if r.mutating]

    def dispatch(self, h: JsonHandler) -> None:
        url = urlparse(h.path)
        raw = h.read_body()
        body = json.loads(raw) if raw and raw.strip().startswith(b"{") else None
        req = Request(h.command, unquote(url.path), {k: v[0] for k, v in parse_qs(url.query).items()}, body,
                      {k.lower(): v for k, v in h.headers.items()})
        self.requests.append(req)
        raw_answer = next((v for k, v in self.raw.items() if k.split(" ")[0] == req.method
                           and req.path.endswith(k.split(" ", 1)[1])), None)
        if raw_answer is not None:
            self._send_bytes(h, raw_answer[2], raw_answer[0], raw_answer[1])
            return
        got = re.match(r"^/download/storage/v1/b/([^/]+)/o/(.+)$", req.path)
        if got and h.command == "GET":  # a storage client's media download: the object's bytes as they are
            data = self.objects.get(f"gs://{got[1]}/{got[2]}")
            if data is None:
                h.send_json(*self._err(404, "NOT_FOUND", f"no object gs://{got[1]}/{got[2]}"))
                return
            self._send_bytes(h, data)
            return
        if req.path.startswith("/ar/") and h.command == "GET":  # Artifact Registry (a KFP repository's file)
            self.package_auth.append(h.headers.get("Authorization"))
            data = self.packages.get(req.path)
            if data is None:
                h.send_json(*self._err(404, "NOT_FOUND", f"no package {req.path}"))
                return
            self._send_bytes(h, data)
            return
        h.send_json(*self._route(req))

    @staticmethod
    def _send_bytes(h: JsonHandler, data: bytes, status: int = 200, ctype: str = "application/octet-stream") -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _err(code: int, status: str, msg: str) -> tuple[int, dict]:
        return code, {"error": {"code": code, "status": status, "message": msg}}

    def _route(self, r: Request) -> tuple[int, dict]:
        p, m = r.path, r.method
        if self.forbid and p.endswith(self.forbid):
            return self._err(403, "PERMISSION_DENIED", "aiplatform.pipelineJobs.create denied on my-proj")
        listing = re.match(r"^/storage/v1/b/([^/]+)/o$", p)
        if listing and m == "GET":  # a storage client's listing of self.objects (prefix, delimiter)
            return 200, self._objects(listing[1], r.query.get("prefix", ""), r.query.get("delimiter", ""))
        if p.startswith("/storage/v1/b"):  # pipeline-root bucket: say it is missing, then accept the create
            if m == "GET" and p.count("/") == 4:
                return self._err(404, "NOT_FOUND", "no bucket")
            return 200, {"name": (r.body or {}).get("name", "bucket"), "bindings": []}
        mm = re.match(r"^/v1/(projects/[^/]+/locations/[^/]+)/(pipelineJobs|schedules)(?:/([^/:]+))?(?::(\w+))?$", p)
        if not mm:
            return self._err(404, "NOT_FOUND", f"fake vertex: no route {m} {p}")
        parent, kind, rid, verb = mm.groups()
        if kind == "pipelineJobs":
            return self._jobs(r, parent, rid)
        return self._schedules(r, parent, rid, verb)

    def _jobs(self, r: Request, parent: str, rid: str | None) -> tuple[int, dict]:
        if r.method == "POST":
            jid = r.query.get("pipelineJobId") or f"job-{next(self._n)}"
            name = f"{parent}/pipelineJobs/{jid}"
            if name in self.jobs:
                return self._err(409, "ALREADY_EXISTS", f"PipelineJob {jid} already exists")
            self.jobs[name] = {**r.body, "name": name, "state": "PIPELINE_STATE_PENDING", "_polls": 0}
            return 200, self._public(self.jobs[name])
        if rid:
            job = self.jobs.get(f"{parent}/pipelineJobs/{rid}")
            if job is None:
                return self._err(404, "NOT_FOUND", "no job")
            return 200, self._advance(job)
        return self._page(r, [self._public(j) for j in self.jobs.values()], "pipelineJobs")

    def _page(self, r: Request, items: list[dict], key: str) -> tuple[int, dict]:
        """One page of a listing (pageSize, pageToken = the offset); with loop_token, the first page for ever (a
        bound of 20 answers keeps a client that follows it from hanging the test)."""
        if self.loop_token and sum(q.path == r.path and q.method == "GET" for q in self.requests) > 20:
            return self._err(500, "INTERNAL", "fake vertex: the client followed a looping page token 20 times")
        size = int(r.query.get("pageSize") or 0) or self.page_size
        start = 0 if self.loop_token else int(r.query.get("pageToken") or 0)
        out: dict = {key: items[start:start + size]} if items[start:start + size] else {}
        if self.loop_token or start + size < len(items):
            out["nextPageToken"] = self.loop_token or str(start + size)
        return 200, out

    def _advance(self, job: dict) -> dict:
        job["_polls"] += 1
        n = job["_polls"]
        final = "FAILED" if self.fail_task else "SUCCEEDED"
        job["state"] = "PIPELINE_STATE_" + ("RUNNING" if n == 1 else final)
        if n > 1:
            tasks = [{"taskName": "load", "state": "SUCCEEDED", "taskId": "1"}]
            if self.fail_task and self.on_fail is not None and not job.get("_failed_once"):
                job["_failed_once"] = True
                self.on_fail(job["name"].rsplit("/", 1)[-1], self.fail_task)
            if self.fail_task:
                tasks.append({"taskName": self.fail_task, "state": "FAILED", "taskId": "2",
                              "error": {"message": f"{self.fail_task} exited with code 1"}})
            job["jobDetail"] = {"taskDetails": tasks}
        return self._public(job)

    def _objects(self, bucket: str, prefix: str, delimiter: str) -> dict:
        items, prefixes = [], set()
        for uri, data in sorted(self.objects.items()):
            name = uri[len(f"gs://{bucket}/"):] if uri.startswith(f"gs://{bucket}/") else None
            if name is None or not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
                continue
            items.append({"kind": "storage#object", "bucket": bucket, "name": name, "size": str(len(data)),
                          "generation": "1", "updated": "2026-12-01T00:00:00.000Z",
                          "contentType": "application/json"})
        out: dict = {"kind": "storage#objects", "items": items}
        if prefixes:
            out["prefixes"] = sorted(prefixes)
        return out

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _schedules(self, r: Request, parent: str, rid: str | None, verb: str | None) -> tuple[int, dict]:
        if r.method == "POST" and not rid:
            name = f"{parent}/schedules/{next(self._n)}"
            self.schedules[name] = {**r.body, "name": name, "state": "ACTIVE"}
            return 200, self.schedules[name]
        if r.method == "GET" and not rid:
            items = list(self.schedules.values())
            f = re.match(r'display_name="(.*)"', r.query.get("filter", ""))
            if f:
                items = [s for s in items if s["displayName"] == f.group(1)]
            return self._page(r, items, "schedules")
        name = f"{parent}/schedules/{rid}"
        sched = self.schedules.get(name)
        if sched is None:
            return self._err(404, "NOT_FOUND", "no schedule")
        if r.method == "DELETE":
            del self.schedules[name]
            return 200, {"name": f"{name}/operations/1", "done": True,
                        "response": {"@type": "type.googleapis.com/google.protobuf.Empty"}}
        if r.method == "POST" and verb in ("pause", "resume"):
            if sched["state"] == "COMPLETED":  # as the service: "cannot be paused or resumed"
                return self._err(400, "FAILED_PRECONDITION", f"Schedule {name} is completed and cannot be {verb}d.")
            sched["state"] = "PAUSED" if verb == "pause" else "ACTIVE"
            if verb == "resume":
                sched["catchUp"] = bool((r.body or {}).get("catchUp", False))
            return 200, {}
        if r.method == "PATCH":
            for key in r.query.get("updateMask", "").split(","):
                camel = re.sub(r"_(\w)", lambda x: x.group(1).upper(), key)
                if camel in (r.body or {}):
                    sched[camel] = r.body[camel]
            return 200, sched
        return 200, sched
