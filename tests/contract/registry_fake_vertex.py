"""A small fake of the Vertex AI v1 REST API for the Model Registry: upload, get, listVersions, mergeVersionAliases.

Versions are addressed as `models/<id>@<version id or alias>`; merging an alias onto a version
removes it from the others, and `-alias` removes it, as Vertex does.
"""

from __future__ import annotations

import re

from vertex_rest import LOC, T, VertexRestFake, err


class FakeVertexModels(VertexRestFake):
    def __init__(self):
        super().__init__()
        self.models: dict[str, list[dict]] = {}  # resource name -> versions (oldest first)

    def aliases(self, resource: str) -> dict[str, str]:
        return {a: v["versionId"] for v in self.models.get(resource, []) for a in v["versionAliases"]}

    def _version(self, resource: str, ref: str | None) -> dict | None:
        versions = self.models.get(resource)
        if not versions:
            return None
        if ref is None:
            return next(v for v in versions if "default" in v["versionAliases"])
        return next((v for v in versions if v["versionId"] == ref or ref in v["versionAliases"]), None)

    def handle(self, method: str, path: str, body: dict, query: str = ""):
        m = re.fullmatch(LOC + r"/models:upload", path)
        if m and method == "POST":
            model = dict(body["model"])
            parent = body.get("parentModel")
            resource = parent or f"{m.group(1)}/models/{body.get('modelId') or len(self.models) + 1}"
            if parent and parent not in self.models:
                return 404, err(404, f"parent model {parent} not found")
            if not parent and resource in self.models:
                return 409, err(409, f"model {resource} already exists")
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
            return 200, self.operation(resource, {"@type": T + "UploadModelResponse", "model": resource,
                                                  "modelVersionId": vid})
        m = re.fullmatch(LOC + r"/models/([a-z0-9-]+)(?:@([A-Za-z0-9-]+))?(:\w+)?", path)
        if not m:
            return 404, err(404, f"no route {method} {path}")
        resource = f"{m.group(1)}/models/{m.group(2)}"
        if resource not in self.models:
            return 404, err(404, f"model {resource} not found")
        verb = m.group(4)
        if method == "GET" and verb == ":listVersions":
            return 200, {"models": self.models[resource]}
        v = self._version(resource, m.group(3))
        if v is None:
            return 404, err(404, f"version {m.group(3)} of {resource} not found")
        if method == "GET" and not verb:
            return 200, v
        if method == "POST" and verb == ":mergeVersionAliases":
            for a in body.get("versionAliases", []):
                if a.startswith("-"):
                    if a[1:] == "default":
                        return 400, err(400, "the default alias cannot be removed")
                    v["versionAliases"] = [x for x in v["versionAliases"] if x != a[1:]]
                    continue
                if not re.fullmatch(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]", a):
                    return 400, err(400, f"bad alias {a!r}")
                for other in self.models[resource]:
                    other["versionAliases"] = [x for x in other["versionAliases"] if x != a]
                v["versionAliases"].append(a)
            return 200, v
        return 404, err(404, f"no route {method} {path}")
