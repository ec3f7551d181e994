"""Vertex AI's client settings from a target profile: `aiplatform.init` and what every aiplatform call is given.

Shared by the backends (submit, schedule, listing) and by components that reach Vertex from inside a run (the
Vertex model registry, endpoint deploys, drift-triggered retraining), so it sits below every layer, next to
kubepipe.clients (KFP's), and imports aiplatform / google.auth only inside the functions.
Auth never comes from YAML: application-default credentials, or explicit `credentials` (tests).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import sys
from pathlib import Path
from typing import Any, Mapping

from kubepipe.clients import api_errors, refuse_inline_secrets, service_name
from kubepipe.errors import UserError

__all__ = ["vertex_init", "vertex_where", "vertex_gapic", "region_problem"]

_GOOGLE_CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def vertex_init(profile: Mapping[str, Any], *, credentials: Any = None, api_endpoint: str | None = None,
                where: str = "profile") -> None:
    """`aiplatform.init` from the profile: project, region, staging bucket; ADC unless given.

    aiplatform's configuration is process-wide and some calls read only it (`Model.upload` builds its
    result without the caller's credentials), so every user of aiplatform calls this first, with its
    own profile: public API, no private state saved or restored."""
    refuse_inline_secrets(profile, where)
    for key in ("project", "region"):
        if not profile.get(key):
            raise UserError(f"{where}.{key}: required for the vertex target (e.g. {key}: my-gcp-project)")
    from google.cloud import aiplatform

    kwargs: dict[str, Any] = {"project": profile["project"], "location": profile["region"]}
    if credentials is not None:
        kwargs["credentials"] = credentials
    endpoint = api_endpoint or profile.get("api_endpoint")
    if endpoint:  # tests: a loopback fake speaking REST (http:// keeps the scheme)
        kwargs["api_endpoint"] = endpoint
        kwargs["api_transport"] = "rest"
    try:
        aiplatform.init(**kwargs)
    except ValueError as exc:  # aiplatform's own check of the location: 'Unsupported region ... frozenset({...})'
        if "region" not in str(exc).lower():
            raise
        problem = region_problem(profile["region"], always=True) or "not a Vertex AI region"
        raise UserError(f"{where}.region: {profile['region']!r} is {problem}") from None


def region_problem(region: str, *, always: bool = False) -> str | None:
    """What is wrong with `region` as a Vertex AI region (`not a Vertex AI region; did you mean `europe-west4`?`), or
    None: one of aiplatform's regions, or no list to check it against (aiplatform not installed) unless `always`
    (aiplatform itself refused it)."""
    known = _vertex_regions()
    if (not known and not always) or region in known:
        return None
    from kubepipe.util import did_you_mean

    hint = did_you_mean(region, known) or "e.g. region: us-central1"
    return f"not a Vertex AI region; {hint}"


@functools.lru_cache(maxsize=1)
def _vertex_regions() -> tuple[str, ...]:
    """The regions aiplatform.init takes: its `constants.base.SUPPORTED_REGIONS`, which aiplatform does not
    document (decision 0018): a release without it gives no list (no check, no hint), never an AttributeError in
    place of the region's error. Loading a vertex profile (validate, compile) must not import aiplatform (seconds):
    the set is read from that module's source as a literal, unless aiplatform is imported already."""
    loaded = sys.modules.get("google.cloud.aiplatform.constants.base")
    if loaded is not None:
        return tuple(sorted(str(r) for r in getattr(loaded, "SUPPORTED_REGIONS", ())))
    return _regions_from_source()


def _regions_from_source() -> tuple[str, ...]:
    """`SUPPORTED_REGIONS = frozenset({...})` of aiplatform's constants/base.py, read with `ast`: () when the file,
    the name or a literal set of strings is not there."""
    try:
        spec = importlib.util.find_spec("google.cloud")
    except (ImportError, ValueError):
        return ()
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder, "aiplatform", "constants", "base.py")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SUPPORTED_REGIONS"
                                                     for t in node.targets)):
                value = node.value
                if isinstance(value, ast.Call) and len(value.args) == 1:  # frozenset({...})
                    value = value.args[0]
                try:
                    regions = ast.literal_eval(value)
                except ValueError:
                    return ()
                if isinstance(regions, (set, frozenset, list, tuple)) and all(isinstance(r, str) for r in regions):
                    return tuple(sorted(regions))
                return ()
    return ()


def vertex_where(profile: Mapping[str, Any], *, credentials: Any = None, api_endpoint: str | None = None,
                 where: str = "profile") -> dict[str, Any]:
    """`vertex_init`, then the project, location and credentials every aiplatform call kubepipe makes is given
    (`**vertex_where(...)`): credentials are application-default ones unless given. aiplatform.init's settings are
    process-wide and outlive the call, and a call given none reads them: in a notebook or a service, a submit
    given no credentials used those an earlier init (another profile's, or the notebook's own) had set, and a
    listing the project another thread had just set."""
    vertex_init(profile, credentials=credentials, api_endpoint=api_endpoint, where=where)
    if credentials is None:
        import google.auth

        svc = service_name("vertex", {**profile, "api_endpoint": api_endpoint or profile.get("api_endpoint")})
        with api_errors(svc, "finding Google credentials"):
            credentials, _ = google.auth.default(scopes=[_GOOGLE_CLOUD_SCOPE])
    return {"project": profile["project"], "location": profile["region"], "credentials": credentials}


def vertex_gapic(client_class: Any, profile: Mapping[str, Any], *, credentials: Any = None,
                 api_endpoint: str | None = None, where: str = "profile") -> Any:
    """A client of aiplatform's GAPIC layer (`aiplatform_v1.PipelineServiceClient`, `ScheduleServiceClient`) for the
    profile, with the credentials `vertex_where` finds, at the endpoint aiplatform would use: its resource classes'
    `list` reads every page (no page size), so a listing that wants N items, or meets a looping page token, pages
    through this one itself (kubepipe.answers.listed)."""
    given = vertex_where(profile, credentials=credentials, api_endpoint=api_endpoint, where=where)
    endpoint = api_endpoint or profile.get("api_endpoint")
    options = {"api_endpoint": endpoint or f"{profile['region']}-aiplatform.googleapis.com"}
    transport = {"transport": "rest"} if endpoint else {}  # as vertex_init: an explicit endpoint is spoken REST
    return client_class(credentials=given["credentials"], client_options=options, **transport)
