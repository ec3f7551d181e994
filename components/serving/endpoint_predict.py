"""Asking a local endpoint for predictions (`kubepipe endpoints predict`)."""

from __future__ import annotations

import json
import math
import re

from kubepipe.components.errors import ComponentError, ServiceFailed
from kubepipe.components.serving.endpoint_record import get_endpoint


def _rows_of(name: str, model_dir: str, inputs: list) -> list:
    """Text arguments (`kubepipe endpoints predict NAME ...`) for a tabular model: each one a JSON row. The
    server refused every string with 'expected an object of features or a list of 8 numbers, got str'."""
    if not inputs or not all(isinstance(x, str) for x in inputs):
        return inputs
    from kubepipe.components.training.artifact import read_model_spec

    try:
        spec = read_model_spec(model_dir)
    except ComponentError:
        return inputs  # the server answers for a model it serves
    if spec.get("task") != "tabular-classification":
        return inputs
    feats = list((spec.get("input_spec") or {}).get("feature_columns") or [])
    rows = []
    for i, text in enumerate(inputs):
        try:
            row = json.loads(text)
        except ValueError:
            row = None
        if not isinstance(row, (dict, list)):
            example = json.dumps(dict.fromkeys(feats[:2], 0.0))[:-1] + (", ...}" if len(feats) > 2 else "}")
            raise ComponentError(f"input {i + 1} ({text!r}): endpoint {name} serves a tabular model; give each row "
                                 f"as JSON: an object of its features, e.g. '{example}', or a list of {len(feats)} "
                                 f"numbers in this order: {', '.join(feats)}")
        for key, value in (row.items() if isinstance(row, dict) else enumerate(row)):
            if isinstance(value, float) and not math.isfinite(value):  # json.loads takes NaN and reads 1e400 as inf
                where = key if isinstance(key, str) else feats[key] if key < len(feats) else f"[{key}]"
                raise ComponentError(f"input {i + 1} ({text!r}): `{where}` reads as {value}, which is no JSON number "
                                     "(NaN, Infinity, or beyond a float's range like 1e400); give a finite number, "
                                     "or null for a missing feature")
        rows.append(row)
    return rows


def batch_limit(rec: dict) -> int:
    """The most instances one request to the endpoint may hold: its servers' `--max-batch-size` (the smaller of
    stable and canary, either may answer), as its record keeps their options; else `kubepipe serve`'s default."""
    from kubepipe.components.serving.options import DEFAULTS, flag_value
    from kubepipe.util import whole_number

    limits = []
    for backend in (rec.get("backend"), rec.get("canary")):
        if isinstance(backend, dict):
            n = whole_number(str(flag_value(backend.get("args"), "--max-batch-size")))
            limits.append(n if n is not None and n >= 1 else int(DEFAULTS["max_batch_size"]))
    return min(limits or [int(DEFAULTS["max_batch_size"])])


def predict_endpoint(name: str, inputs: list, state_dir: str = ".kubepipe", timeout_s: float = 30) -> dict:
    """POST V1 predicts to the endpoint's stable URL, as many as its batch limit needs (`batch_limit`: more inputs
    in one request were the server's 413), the answers joined in the inputs' order. Strings for a tabular model
    are JSON rows (objects of features or lists of numbers), as `kubepipe endpoints predict` passes them.
    `answered_by`: per prediction, which backend answered it, {revision: stable | canary, version}, as the
    endpoint's proxy names it (REVISION_HEADER; a proxy an older kubepipe started names none: `stable` and the
    record's version when no canary bakes, else both null); `version`: the registry version that answered every
    input (null when both revisions answered some, or it is not known); `canary_version`: a baking canary's."""
    rec = get_endpoint(name, state_dir)
    _check_serving(name, rec, state_dir)
    inputs = _rows_of(name, rec["model_dir"], inputs)
    size = batch_limit(rec)
    canary = rec.get("canary") if isinstance(rec.get("canary"), dict) else None
    body: dict = {}
    answered: list[dict] = []
    for start in range(0, max(len(inputs), 1), size):
        part, revision = _post(name, rec, inputs[start:start + size], start, timeout_s)
        if revision is None:  # no header: only the stable backend can have answered, unless a canary bakes
            revision = ("stable", rec.get("version")) if canary is None else (None, None)
        body = {**part, "predictions": [*body.get("predictions", []), *part.get("predictions", [])]}
        answered += [{"revision": revision[0], "version": revision[1]}] * len(part.get("predictions", []))
    versions = {(a["revision"], a["version"]) for a in answered}
    version = next(iter(versions))[1] if len(versions) == 1 else None
    return {**body, "answered_by": answered, "version": version,
            "canary_version": canary.get("version") if canary else None}


def _check_serving(name: str, rec: dict, state_dir: str) -> None:
    """A ServiceFailed when the recorded proxy is gone and no proxy of the endpoint runs: whatever answers on its port
    now is another program, which got the inputs and whose answer (an HTML 501, or JSON that reads as predictions) was
    shown as the endpoint's."""
    from kubepipe.components.serving import processes as P
    from kubepipe.components.serving.endpoint_record import record_file
    from kubepipe.components.serving.endpoint_repair import gone_processes, restart_hint

    if not rec.get("proxy") or P.is_ours(rec["proxy"], P.PROXY_MODULE, name):
        return
    f = record_file(state_dir, name)
    if any(p["role"] == "proxy" for p in P.find_owned(f"{f}#", legacy_record=str(f))):
        return  # a proxy of it that the record lost (an interrupted deploy) still answers
    raise ServiceFailed(f"endpoint {name} is down: its {' and '.join(gone_processes(rec, name))} stopped; nothing was "
                        f"sent to {rec['url']}, where another program may answer now; {restart_hint(rec)}")


def _post(name: str, rec: dict, inputs: list, start: int, timeout_s: float) -> tuple[dict, tuple | None]:
    """One request of `inputs` (from input `start` on, 0-based, for the error's input number): its body, and which
    backend answered it (`proxy.answering_revision`)."""
    import httpx

    try:
        r = httpx.post(f"{rec['url']}/v1/models/{name}:predict", json={"instances": inputs}, timeout=timeout_s,
                       trust_env=False)
    except httpx.HTTPError as exc:
        raise ServiceFailed(f"endpoint {name} at {rec['url']} is not answering ({type(exc).__name__}); "
                            f"check `kubepipe endpoints list`", retryable=True) from None
    try:
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {"error": r.text}
    except ValueError:
        body = {"error": r.text[:300]}
    if not isinstance(body, dict):
        body = {"error": f"unexpected answer {str(body)[:300]}"}
    if r.status_code != 200:
        where = _for_input(body.get("field"), inputs, start)
        failed = r.status_code >= 500 or r.status_code in (408, 429)  # the server's failure, not the input's
        raise (ServiceFailed if failed else ComponentError)(
            f"endpoint {name} answered {r.status_code}{where}: {body.get('error', body)}", retryable=failed)
    preds = body.get("predictions")
    if not isinstance(preds, list) or len(preds) != len(inputs):
        # paired with the inputs in order: one answer short would pair every later input with the wrong answer
        got = f"{len(preds)} answers" if isinstance(preds, list) else f"no `predictions` list ({str(preds)[:80]})"
        raise ServiceFailed(f"endpoint {name} at {rec['url']} gave {got} for {len(inputs)} inputs (inputs "
                            f"{start + 1}-{start + len(inputs)}); nothing is shown, as the answers cannot be "
                            "paired with the inputs; check its server (`kubepipe endpoints list`) and its log")
    from kubepipe.components.serving.proxy import REVISION_HEADER, answering_revision

    return body, answering_revision(r.headers.get(REVISION_HEADER))


def _for_input(field, inputs: list, start: int = 0) -> str:
    """` for input 2 ('SHELL ...')`: the server's `instances[1]` (0-based, in the request it was sent, which holds
    the inputs from `start` on) as the command line's inputs are numbered (from 1, as this module's own errors say
    them); '' when the field names none."""
    m = re.match(r"instances\[(\d+)\]", str(field or ""))
    if not m or int(m.group(1)) >= len(inputs):
        return ""
    i = int(m.group(1))
    shown = inputs[i] if isinstance(inputs[i], str) else json.dumps(inputs[i])
    return f" for input {start + i + 1} ({shown[:40] + '...' if len(shown) > 40 else shown!r})"
