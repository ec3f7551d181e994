"""The text limit of the endpoint a guardrail's probes are held to (validate-outputs' `endpoint`).

A probe the endpoint refuses is refused by the guardrail (its output is one the endpoint never returns), so the
limit must be the endpoint's own: `kubepipe serve --max-text-length 2000` takes a 1,000-character probe that its
default 512 refuses. Read from:

- a local endpoint's name (`kubepipe endpoints list`): its record, the serving backend's `kubepipe serve` options;
- an endpoint's model URL (`http://host:port/v1/models/NAME`, its `:predict` too): the server's model card route,
  `GET /kubepipe/v1/models/NAME` (`max_text_length`);
- nothing: `kubepipe serve`'s default, the limit a deploy step starts its endpoint with.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple

from kubepipe.components.errors import ConfigError
from kubepipe.secrets import redact_url

__all__ = ["TextLimit", "text_limit", "default_limit"]

_MODEL_PATH = re.compile(r"/(?:kubepipe/)?v[12]/models/([^/:]+)(?::predict|:retrieve|/infer)?/?")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_WHAT = ("a local endpoint's name (kubepipe endpoints list) or its model URL (http://host:port/v1/models/NAME); "
         "empty: kubepipe serve's defaults")


class TextLimit(NamedTuple):
    chars: int
    source: str  # said with a refused probe: where the limit comes from


def default_limit() -> TextLimit:
    from kubepipe.components.serving.options import DEFAULTS

    n = int(DEFAULTS["max_text_length"])
    return TextLimit(n, f"kubepipe serve --max-text-length {n}")




def text_limit(endpoint: str, state_dir: str = "", *, timeout_s: float = 10.0) -> TextLimit:
    """The max text length `endpoint` applies (see the module); ConfigError naming `endpoint` when it cannot be read."""
    endpoint = (endpoint or "").strip()
    if not endpoint:
        return default_limit()
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", endpoint):
        return _from_url(endpoint, timeout_s)
    from kubepipe.components.deploy.target import endpoints_root

    return _from_record(endpoint, endpoints_root(state_dir))  # a step's state dir is .kubepipe/state


def _from_record(name: str, state_dir: str) -> TextLimit:
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.endpoint_record import get_endpoint

    try:
        rec = get_endpoint(name, state_dir)
    except ComponentError as exc:
        raise ConfigError(f"validate-outputs: endpoint: {exc}; give {_WHAT}") from None
    backend = rec.get("backend") or {}
    if not backend:
        raise ConfigError(f"validate-outputs: endpoint: local endpoint {name!r} serves no model now (kubepipe "
                          f"endpoints list); deploy it first, or give {_WHAT}")
    from kubepipe.components.serving.options import flag_value

    value = flag_value(backend.get("args"), "--max-text-length")
    if value is not None:
        return TextLimit(_chars(value, f"local endpoint {name!r}'s record"),
                         f"local endpoint {name}: kubepipe serve --max-text-length {value}")
    n = default_limit().chars
    return TextLimit(n, f"local endpoint {name}: kubepipe serve --max-text-length {n}, its default")


def _from_url(url: str, timeout_s: float) -> TextLimit:
    parts = urllib.parse.urlsplit(url)
    shown = redact_url(url)
    m = _MODEL_PATH.fullmatch(parts.path)
    if parts.username or parts.password:
        raise ConfigError(f"validate-outputs: endpoint {shown!r} holds credentials, which end up in the run's "
                          "records; give the URL without them (the model card route needs none)")
    if parts.scheme not in ("http", "https") or not parts.hostname or not m:
        raise ConfigError(f"validate-outputs: endpoint {shown!r} is not an endpoint's model URL; give {_WHAT}")
    card = urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/kubepipe/v1/models/{m.group(1)}", "", ""))
    try:
        # a loopback endpoint is reached directly, never through the shell's http_proxy (as processes.http_get)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if parts.hostname in _LOOPBACK else None
        with (opener.open if opener else urllib.request.urlopen)(card, timeout=timeout_s) as resp:  # nosec B310
            body = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        said = _error_of(exc)
        raise ConfigError(f"validate-outputs: endpoint {shown}: its model card {card} answered {exc.code}"
                          f"{f' ({said})' if said else ''}: is it a kubepipe serve endpoint, and the model name in the "
                          "URL the one it serves?") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"validate-outputs: endpoint {shown}: its model card {card} could not be read ({exc}); "
                          "is the endpoint up? (or leave `endpoint` empty for kubepipe serve's defaults)") from None
    value = body.get("max_text_length") if isinstance(body, dict) else None
    return TextLimit(_chars(value, f"the model card {card}"), f"endpoint {shown}: max_text_length {value}")


def _chars(value, where: str) -> int:
    from kubepipe.util import whole_number

    n = whole_number(str(value))
    if n is None or n < 1:
        raise ConfigError(f"validate-outputs: endpoint: {where} gives max_text_length {value!r}, not a positive whole "
                          "number; leave `endpoint` empty for kubepipe serve's defaults")
    return n


def _error_of(exc: urllib.error.HTTPError) -> str:
    """The server's own words (kubepipe serve's {"error": ...}: 'model `x` is not served here; try `m`'), if any."""
    try:
        said = json.loads(exc.read(4096).decode("utf-8")).get("error")
    except (OSError, ValueError, AttributeError):
        return ""
    return str(said)[:200] if said else ""
