"""Credentials never live in YAML: find inline secrets in target profiles, pipelines, labels and params.

Auth comes from the environment: a KFP bearer token from the env var the profile names
(`auth: {token_env: KFP_TOKEN}`) or a kubeconfig; Vertex uses application-default credentials.
A profile may *name* where a secret lives (`*_env`, `*_file`, `kubeconfig`), never hold it.
A pipeline passes a secret to a step as `env: {VAR: {secret: <name>, key: <key>}}` (a Kubernetes
secret on Kubeflow; the caller's own environment locally), never as a literal in `env`, `with`,
`inputs` or a param default, where KFP would store it in the compiled pipeline and show it in its UI.

One rule for both: a value is a secret when its key names a credential (`*PASSWORD*`, `*SECRET*`,
`*TOKEN*`, `*ACCESS_KEY*`, `*API_KEY*`, `*PRIVATE_KEY*`, `*CREDENTIALS*`, ...) and the value is
text that could be one, or when the value itself has a credential's shape (kubepipe.secret_shapes).
Hiding them in what is shown is kubepipe.redaction; both are re-exported here, so callers import
`kubepipe.secrets` alone. Sits below every layer (like kubepipe.errors) so the loader, the profile
reader, the backends and error formatting all call it.
"""

from __future__ import annotations

from typing import Any, Collection, Iterator

from kubepipe.redaction import (MAY_HOLD_CREDENTIAL, environment_secrets, redact_profile, redact_text, redact_url, redacted,
                                registry_uri_problem)
from kubepipe.secret_shapes import (IMAGE_CREDENTIALS_KIND, IMAGE_PULL_HINT, REDACTED, WEBHOOK_KIND, WHOLE_REF, is_secret_name, keyed_secret,
                                    secret_value_kind)
from kubepipe.util import nested_strings

__all__ = ["check_profile_secrets", "inline_secrets", "pipeline_secrets", "redact_profile", "redacted",
           "label_secrets", "redacted_labels", "redact_text", "is_secret_name",
           "secret_value_kind", "redact_url", "REDACTED", "registry_uri_problem", "WEBHOOK_KIND",
           "param_credentials", "param_credential_messages", "label_holds", "LABELS_SAY",
           "environment_secrets", "MAY_HOLD_CREDENTIAL"]

def label_secrets(labels: Any, path: tuple) -> Iterator[tuple[tuple, object, str | None]]:
    """(path, key, kind) for every label (a pipeline's metadata.labels, a profile's labels) that holds a credential,
    kind as `_walk` gives it: a value shaped like one, or a key naming one (`password`, `db_password`,
    `github_token`) with a value that is no flag, number or path, or a key holding one as a part (`secret_level`)
    with a value that is no few plain words (`high`, `per-team`): `keyed_secret`'s rule, as redact_text's. Labels are copied into the compiled pipeline,
    every run's record and the Vertex job and its model and endpoint."""
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        if not isinstance(value, str):
            continue
        kind = secret_value_kind(value)
        if kind or keyed_secret(key, value):
            yield path + (key,), key, kind


def redacted_labels(labels: dict) -> dict:
    """`labels` with each value `label_secrets` calls a credential REDACTED (a run recorded before such labels were
    refused keeps it in its run.json; `runs show` / `runs list` do not print it)."""
    found = {where[0] for where, _, _ in label_secrets(labels, ())}
    return {k: REDACTED if k in found else v for k, v in labels.items()}


def inline_secrets(node: Any, path: tuple = (), given: str = "written in YAML") -> list[tuple[tuple, str]]:
    """(YAML path, what to do) for every credential written inline in a profile; [] when clean.

    `given` says how it came (`passed with --set`: a command line lands in shell history and CI logs)."""
    found: list[tuple[tuple, str]] = []
    hits = list(_walk({k: v for k, v in node.items() if k != "labels"} if isinstance(node, dict) else node, path))
    if isinstance(node, dict):  # a profile's labels: by the label rule (`token_budget: high` is no credential)
        found += [(where, f"{label_holds(key, kind)}; drop it: {LABELS_SAY}")
                  for where, key, kind in label_secrets(node.get("labels"), path + ("labels",))]
    for where, key, kind in hits:
        if kind is None:
            found.append((where, f"credentials must not be {given}; put the value in an "
                                 f"environment variable and name it with `{key}_env: VAR_NAME` (KFP: "
                                 "auth.token_env, Vertex: application-default credentials)"))
        elif kind == IMAGE_CREDENTIALS_KIND:  # pull credentials: the runtime's own, no environment variable's
            found.append((where, f"looks like {kind}; credentials must not be {given}; {IMAGE_PULL_HINT}"))
        else:
            found.append((where, f"looks like {kind}; credentials must not be {given} - "
                                 "reference them from the environment instead"))
    return found


LABELS_SAY = "labels say who and what (team, cost-center)"


def label_holds(key: object, kind: str | None) -> str:
    """What a label found by `label_secrets` holds and where labels go (no value said)."""
    return (f"a label holds a credential ({kind or f'`{key}` names one'}); labels are written into the compiled "
            "pipeline, every run's record and the Vertex job, model and endpoint")


def check_profile_secrets(profile: dict, where: str = "profile") -> list[str]:
    """One message per inline credential found (YAML path + what to do); [] when clean."""
    return [where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) + f": {message}"
            for path, message in inline_secrets(profile)]


def param_credentials(params: dict) -> list[tuple[str, str]]:
    """(param, what it holds: "a URL with a password", "`token` names one") for every run-time param value that
    holds a credential, by the rule a param default in YAML meets, or that `runs show` would show redacted
    (`redact_text`: `--db-password=...`, `'--token', '...'`, the value of a credential-named environment variable),
    since run.json keeps it as given; [] when clean. The value is never said."""
    found = []
    for name, value in params.items():
        hit = next(_walk({name: value}, ()), None)
        if hit is not None:
            found.append((name, hit[2] or f"`{hit[1]}` names one"))
        elif any(redact_text(v) != v for v in nested_strings(value)):
            env = any(secret in v for v in nested_strings(value) for secret in environment_secrets())
            found.append((name, "the value of a credential-named environment variable" if env else
                                "a credential in its text: a `password=<value>` pair or a credential flag's value"))
    return found


def param_credential_messages(params: dict, *, resumed: str | None = None,
                              carried: Collection[str] = ()) -> list[str]:
    """What a local run says of each run-time param value holding a credential: as a param default is told.
    `carried`: the params a run resumed with --resume `resumed` took from its record, not from --param now (one
    recorded before such values were refused): the message says so, not '--param' the user did not pass."""
    from kubepipe.arguments import param_hint, param_place, resume_place

    secret_env = (f"give the step `env: {{VAR: {_SECRET_REF}}}` instead (locally VAR is read from your own "
                  "environment) and read VAR in the component")
    return [f"param {name}: the value run {resumed} recorded (taken by {resume_place()}) holds a credential ({kind}), "
            f"which params may no longer hold; pass `{param_hint(name)}` without it (a value given now replaces the "
            f"recorded one), or start a fresh run without {resume_place()}; {secret_env}" if name in carried else
            f"{param_place(name)}: a param value holds a credential ({kind}); params are recorded with every run "
            f"(run.json, `kubepipe runs show`); {secret_env}"
            for name, kind in param_credentials(params)]


_SECRET_REF = "{secret: <kubernetes-secret-name>, key: <key-in-that-secret>}"  # nosec B105 - a placeholder, not a credential


def _section(data: dict, key: str) -> dict:
    """data[key] when it is a mapping, else {} (the structure checks report it)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def pipeline_secrets(data: Any) -> list[tuple[tuple, str, str]]:
    """(YAML path, message, hint) for every credential written literally in a pipeline document.

    Keys are checked where values reach a step (`env`, `with`, `inputs`, `foreach` items, param defaults,
    `schedule.params`); credential-shaped values anywhere. Messages never contain the value.
    """
    if not isinstance(data, dict):
        return []
    found: dict[tuple, tuple[tuple, str, str]] = {}
    holders: list[tuple[tuple, Any]] = [(("steps", n), s) for n, s in _section(data, "steps").items()]
    holders += [(("on_exit",), data.get("on_exit")), (("defaults",), data.get("defaults"))]
    for base, step in holders:
        if not isinstance(step, dict):
            continue
        for section in ("env", "with", "inputs", "foreach"):  # foreach: each item reaches the step, as `with`
            values = step.get(section)
            if section == "env" and isinstance(values, dict):  # a mapping there is a secret reference, whole or
                values = {k: v for k, v in values.items() if not isinstance(v, dict)}  # not (the model says which)
            for where, key, kind in _walk(values, base + (section,), refs_ok=True):
                what = kind or f"`{key}` names a credential"
                if section == "env" and len(where) == len(base) + 2:
                    hint = f"reference a secret instead: `{key}: {_SECRET_REF}` (locally the variable is read " \
                           "from your own environment)"
                else:
                    hint = f"pass it to the step as `env: {{VAR: {_SECRET_REF}}}` and read VAR in the component"
                    if kind == WEBHOOK_KIND:
                        hint += " (the notify step reads it itself: `webhook_env: VAR`)"
                found[where] = (where, f"a literal credential ({what}) would be written into the compiled "
                                       "pipeline, which KFP stores and shows in its UI", hint)
    for name, spec in _section(data, "params").items():
        if isinstance(spec, dict) and "default" in spec:
            hits = _walk({name: spec["default"]}, ("params",), refs_ok=True)
            for where, key, kind in hits:
                where = ("params", name, "default") + where[2:]
                found[where] = (where, f"a param default holds a credential ({kind or f'`{key}` names one'}); "
                                       "params are recorded with every run",
                                f"give the step `env: {{VAR: {_SECRET_REF}}}` instead")
    for where, key, kind in label_secrets(_section(data, "metadata").get("labels"), ("metadata", "labels")):
        found[where] = (where, label_holds(key, kind), f"{LABELS_SAY}; pass a credential to a step as "
                                                        f"`env: {{VAR: {_SECRET_REF}}}`")
    for where, key, kind in _walk(_section(data, "schedule").get("params"), ("schedule", "params"), refs_ok=True):
        found[where] = (where, f"a scheduled run's param holds a credential ({kind or f'`{key}` names one'})",
                        f"give the step `env: {{VAR: {_SECRET_REF}}}` instead")
    for where, kind in _shaped(data, ()):
        found.setdefault(where, (where, f"looks like {kind}; credentials must not be written in a pipeline",
                                 IMAGE_PULL_HINT if kind == IMAGE_CREDENTIALS_KIND
                                 else f"pass it to a step as `env: {{VAR: {_SECRET_REF}}}`"))
    return sorted(found.values(), key=lambda f: tuple(map(str, f[0])))


def _walk(node: Any, path: tuple, key: object = None,
          refs_ok: bool = False) -> Iterator[tuple[tuple, object, str | None]]:
    """(path, key, kind) for credentials: kind None = found by its key, else the value's shape.
    `refs_ok`: a whole `${...}` reference is wiring, not a literal (pipelines, after ${env.X})."""
    if isinstance(node, dict):
        if set(node) == {"secret", "key"}:
            return  # a SecretRef: where the secret is, not the secret
        for k, v in node.items():
            yield from _walk(v, path + (k,), k, refs_ok)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,), key, refs_ok)
    elif isinstance(node, str):
        kind = secret_value_kind(node)
        if refs_ok and not kind and WHOLE_REF.match(node.strip()):
            return
        if kind or (key is not None and keyed_secret(key, node)):
            yield path, key, kind


def _shaped(node: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _shaped(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _shaped(v, path + (i,))
    else:
        kind = secret_value_kind(node)
        if kind:
            yield path, kind
