"""A small fake of the KFP REST v2beta1 API on loopback, recording every request.

Only what kubepipe's submit / schedule / runs paths call; state lives in dicts.
Runs advance one state per GET so `wait` can be followed: PENDING -> RUNNING -> final,
where the final state and failing task come from `fail_task` (None = success).
"""

from __future__ import annotations

import email.parser
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

import yaml
from loopback import JsonHandler, LoopbackServer

API = "/apis/v2beta1"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    body: dict | None = None
    form: dict = field(default_factory=dict)  # multipart fields (uploadfile -> text)
    headers: dict = field(default_factory=dict)

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PATCH", "DELETE", "PUT")


class FakeKfp(LoopbackServer):
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}  # version id -> version (with pipeline_id)
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring: dict[str, dict] = {}
        self.fail_task: str | None = None
        self.task_error: str | None = None  # the failed task's and run's error message (default: exited with code 1)
        # called once per run as its task fails, (run id, task): what the task's pod did first (a gate's verdict)
        self.on_fail = None
        self.multi_user = False
        self.forbid: str | None = None  # a path suffix answered 403
        self.stall: str | None = None  # a path suffix held 3 s, then closed unanswered (a hung proxy)
        # "METHOD /path-suffix" -> (status, content type, body): what a proxy or a broken server answers instead
        self.raw: dict[str, tuple[int, str, bytes]] = {}
        self.loop_pages = False  # every listing names its first page as the next one (a server that loops)
        self.tasks = ["load", "train"]
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.max_enabled: dict[str, int] = {}

    def mutations(self) -> list[Request]:
        return [r for r in self.requests if r.mutating]

    def _id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    # --- dispatch --------------------------------------------------------------------------
    def dispatch(self, h: JsonHandler) -> None:
        url = urlparse(h.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        raw = h.read_body()
        req = Request(h.command, unquote(url.path), query, headers=dict(h.headers))
        ctype = h.headers.get("Content-Type", "")
        if raw and ctype.startswith("multipart/"):
            msg = email.parser.BytesParser().parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            for part in msg.get_payload():
                name = part.get_param("name", header="content-disposition")
                req.form[name] = part.get_payload(decode=True).decode()
        elif raw:
            req.body = json.loads(raw)
        self.requests.append(req)
        if self.stall and req.path.endswith(self.stall):
            time.sleep(3)
            return  # the client gave up long before: nothing to answer
        raw = next((v for k, v in self.raw.items() if k.split(" ")[0] == req.method
                    and req.path.endswith(k.split(" ", 1)[1])), None)
        if raw is not None:
            status, ctype, data = raw
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        with self._lock:
            status, out = self._route(req)
            enabled: dict[str, int] = {}
            for rr in self.recurring.values():
                if rr.get("status") == "ENABLED":
                    enabled[rr["display_name"]] = enabled.get(rr["display_name"], 0) + 1
            for name, n in enabled.items():  # "never two active", observed after every request
                self.max_enabled[name] = max(self.max_enabled.get(name, 0), n)
        h.send_json(status, out)

    def _route(self, r: Request) -> tuple[int, dict]:
        p, m = r.path.removeprefix(API), r.method
        if self.forbid and p.endswith(self.forbid):
            return 403, {"error": "user cannot access namespace team-a", "code": 7}
        parts = p.strip("/").split("/")
        if p == "/healthz":
            return 200, {"multi_user": self.multi_user}
        if p == "/pipelines" and m == "GET":
            return 200, self._list("pipelines", self.pipelines.values(), r)
        if p == "/pipelines/upload" and m == "POST":
            pid = self._id("pipeline")
            self.pipelines[pid] = {"pipeline_id": pid, "display_name": r.query["name"],
                                   "description": r.query.get("description", "")}
            vid = self._id("version")  # KFP makes a first version named after the pipeline
            self.versions[vid] = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": r.query["name"]}
            return 200, self.pipelines[pid]
        if p == "/pipelines/upload_version" and m == "POST":
            pid = r.query["pipelineid"]
            if pid not in self.pipelines:
                return 404, {"error": "no pipeline", "code": 5}
            vid = self._id("version")
            yaml.safe_load_all(r.form["uploadfile"])  # must be a readable package
            self.versions[vid] = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": r.query["name"],
                                  "description": r.query.get("description", "")}
            return 200, self.versions[vid]
        if len(parts) == 2 and parts[0] == "pipelines" and m == "GET":
            found = self.pipelines.get(parts[1])
            return (200, found) if found else (404, {"error": f"pipeline {parts[1]} not found", "code": 5})
        if len(parts) == 3 and parts[0] == "pipelines" and parts[2] == "versions" and m == "GET":
            items = [v for v in self.versions.values() if v["pipeline_id"] == parts[1]]
            return 200, self._list("pipeline_versions", items, r)
        if p == "/experiments" and m == "GET":
            return 200, self._list("experiments", self.experiments.values(), r)
        if p == "/experiments" and m == "POST":
            eid = self._id("experiment")
            self.experiments[eid] = {**r.body, "experiment_id": eid}
            return 200, self.experiments[eid]
        if p == "/runs" and m == "POST":
            rid = self._id("run")
            self.runs[rid] = {**r.body, "run_id": rid, "state": "PENDING", "_polls": 0}
            return 200, self._public(self.runs[rid])
        if p == "/runs" and m == "GET":
            return 200, self._list("runs", [self._public(x) for x in self.runs.values()], r)
        if parts[0] == "runs" and len(parts) == 2 and m == "GET":
            return self._poll_run(parts[1])
        if p == "/recurringruns" and m == "POST":
            rid = self._id("recurring")
            status = "DISABLED" if r.body.get("mode") == "DISABLE" else "ENABLED"
            self.recurring[rid] = {**r.body, "recurring_run_id": rid, "status": status}
            return 200, self.recurring[rid]
        if p == "/recurringruns" and m == "GET":
            return 200, self._list("recurringRuns", self.recurring.values(), r)
        if parts[0] == "recurringruns" and len(parts) == 2:
            rid, _, verb = parts[1].partition(":")
            if rid not in self.recurring:
                return 404, {"error": f"recurring run {rid} not found", "code": 5}
            if m == "DELETE":
                del self.recurring[rid]
                return 200, {}
            if m == "POST" and verb in ("enable", "disable"):
                self.recurring[rid]["mode"] = "ENABLE" if verb == "enable" else "DISABLE"
                self.recurring[rid]["status"] = "ENABLED" if verb == "enable" else "DISABLED"
                return 200, {}
            return 200, self.recurring[rid]
        return 404, {"error": f"fake KFP: no route {m} {p}", "code": 5}

    @staticmethod
    def _public(run: dict) -> dict:
        return {k: v for k, v in run.items() if not k.startswith("_")}

    def _list(self, key: str, items, r: Request) -> dict:
        items = list(items)
        if r.query.get("filter"):
            for pred in json.loads(r.query["filter"])["predicates"]:
                items = [i for i in items if i.get(pred["key"]) == pred.get("stringValue")]
        if r.query.get("sort_by", "").endswith(" desc"):  # creation order stands in for created_at
            items.reverse()
        total = len(items)
        if self.loop_pages:
            return {key: items, "total_size": total, "next_page_token": "0"}
        size = int(r.query.get("page_size") or 0)
        if size:  # pages as the API gives them: an opaque next_page_token until the last one
            start = int(r.query.get("page_token") or 0)
            items, rest = items[start:start + size], items[start + size:]
            if rest:
                return {key: items, "total_size": total, "next_page_token": str(start + size)}
        return {key: items, "total_size": total} if items else {"total_size": total}

    def _poll_run(self, rid: str) -> tuple[int, dict]:
        run = self.runs.get(rid)
        if run is None:
            return 404, {"error": "no run", "code": 5}
        run["_polls"] += 1
        n = run["_polls"]
        final = "FAILED" if self.fail_task else "SUCCEEDED"
        run["state"] = "PENDING" if n == 1 else "RUNNING" if n == 2 else final
        tasks = []
        for i, name in enumerate(self.tasks):
            if n == 1:
                st = "PENDING"
            elif n == 2:
                st = "RUNNING" if i == 0 else "PENDING"
            elif self.fail_task == name:
                st = "FAILED"
                if self.on_fail is not None and not run.get("_failed_once"):
                    run["_failed_once"] = True
                    self.on_fail(rid, name)
            else:
                st = "SUCCEEDED" if not self.fail_task or i < self.tasks.index(self.fail_task) else "SKIPPED"
            task = {"display_name": name, "state": st, "task_id": f"{rid}-{name}"}
            if st == "FAILED":
                task["error"] = {"message": self.task_error or f"{name} exited with code 1"}
            tasks.append(task)
        run["run_details"] = {"task_details": tasks}
        if self.task_error and run["state"] == "FAILED":
            run["error"] = {"message": self.task_error}
        return 200, self._public(run)
