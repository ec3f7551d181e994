"""Credentials never live in YAML: find inline secrets in target profiles and pipelines; redact them.

Auth comes from the environment: a KFP bearer token from the env var the profile names
(`auth: {token_env: KFP_TOKEN}`) or a kubeconfig; Vertex uses application-default credentials.
A profile may *name* where a secret lives (`*_env`, `*_file`, `kubeconfig`), never hold it.
A pipeline passes a secret to a step as `env: {VAR: {secret: <name>, key: <key>}}` (a Kubernetes
secret on Kubeflow; the caller's own environment locally), never as a literal in `env`, `with`,
`inputs` or a param default, where KFP would store it in the compiled pipeline and show it in its UI.

One rule for both: a value is a secret when its key names a credential (`*PASSWORD*`, `*SECRET*`,
`*TOKEN*`, `*ACCESS_KEY*`, `*API_KEY*`, `*PRIVATE_KEY*`, `*CREDENTIALS*`, ...) and the value is
text that could be one, or when the value itself has a credential's shape (AWS access key id,
PEM private key, JWT, Google API key, service-account JSON, bearer/OAuth/GitHub tokens, a URL
with a password, a Slack, Discord, Teams, Google Chat or Mattermost webhook URL). Sits below every layer (like kubepipe.errors) so the loader, the profile
reader, the backends and error formatting all call it.
"""

from __future__ import annotations

import re
from typing import Any, Collection, Iterator

from kubepipe.util import is_file_uri

__all__ = ["check_profile_secrets", "inline_secrets", "pipeline_secrets", "redact_profile", "redacted",
           "label_secrets", "redacted_labels", "redact_text", "is_secret_name",
           "secret_value_kind", "redact_url", "REDACTED", "registry_uri_problem"]

REDACTED = "<redacted>"
WEBHOOK_KIND = "a webhook URL, whose path is its credential"  # secret_value_kind's word for one

# Parts of a key (snake_case after splitting camelCase) that name the secret itself.
_SECRET_PART = re.compile(
    r"(^|_)(\w*token|bearer|passw(or)?d\w*|passphrase|secrets?|\w*secret|cookies?|auth_header|credentials?|"
    r"api_?key|access_?key|private_?key|secret_?key|account_?key)($|_)"
)
# Keys that only say where the secret is (allowed), and tokenizer vocabulary (`pad_token: "[PAD]"`).
_REFERENCE_KEY = re.compile(r"(_env|_file|_path|_name|_ref|_uri)$|^(kubeconfig|kube_context|service_account)$|"
                            r"(^|_)(pad|unk|eos|bos|cls|sep|mask|special)_tokens?(_id)?$")
# Credential shapes, each matched whole: `secret_value_kind` finds them in a value, `redact_text` replaces
# all of each inside free text.
_TOKENS = [
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(-----END [A-Z0-9 ]*-----|$)", re.S),
     "a PEM private key"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.I), "a bearer token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"), "a JWT"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), "a Google API key"),
    (re.compile(r"\b(ghp|gho|ghs|ghu|ghr|github_pat)_[A-Za-z0-9_]{10,}"), "an access token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), "a Hugging Face token"),
    # OpenAI / Anthropic keys; a run of 20 letters and digits tells one from a name (sk-learn-...-v2)
    (re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]*[A-Za-z0-9]{20}"
                r"[A-Za-z0-9_-]*"), "an API key"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), "a GitLab token"),
    (re.compile(r"\b[sr]k_(live|test)_[A-Za-z0-9]{16,}"), "a Stripe key"),
    (re.compile(r"\bya29\.[A-Za-z0-9_.-]{20,}"), "an OAuth access token"),
]
# Values that are secrets whatever their key: the token shapes, a service-account key file, a URL's password.
_SECRET_VALUE = [
    _TOKENS[0],  # a service-account key holds a PEM key: named as the PEM key, as before
    (re.compile(r'"private_key"\s*:|"type"\s*:\s*"service_account"'), "a service-account key (JSON)"),
    *_TOKENS[1:],
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
]
# Text under a credential-named key that cannot be the credential: flags, numbers, paths, plain URLs.
_HARMLESS = re.compile(r"^(|true|false|yes|no|on|off|none|null|[-+]?\d+(\.\d+)?|"
                       r"(/|\./|\.\./|~/)\S*|[a-z][a-z0-9+.-]*://[^@\s]*)$", re.I)
_WHOLE_REF = re.compile(r"^\$\{[^}]*\}$")
# A label's key that ends in a credential's name names the credential itself (`password`, `db_password`,
# `github_token`); one that only holds it as a part says something about it (`token_budget`, `secret_level`).
_CREDENTIAL_LAST = re.compile(r"(^|_)(\w*tokens?|bearer|passw(or)?d|passphrase|\w*secrets?|cookies?|auth_header|"
                              r"credentials?|api_?key|access_?key|private_?key|secret_?key|account_?key)$")
# A label value that is a few plain words (`high`, `per-team`, `gpu_heavy`): no credential, whatever its key.
_PLAIN_WORDS = re.compile(r"^[a-z]{1,20}([-_. ][a-z]{1,20}){0,4}$", re.I)


def is_secret_name(name: str) -> bool:
    """Does this key / variable name say it holds a credential (and not where one is)?"""
    key = _normal_key(str(name))
    return bool(_SECRET_PART.search(key)) and not _REFERENCE_KEY.search(key)


def _normal_key(name: str) -> str:
    """A key as snake_case, lowercase (`apiKey`, `API-KEY` and `api.key` are `api_key`)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_").replace(".", "_")


def secret_value_kind(value: object) -> str | None:
    """What credential the text looks like ("a JWT", ...), or None."""
    if not isinstance(value, str):
        return None
    for pattern, kind in _SECRET_VALUE:
        if pattern.search(value):
            return kind
    if "hooks" in value or "webhook" in value or "/services/" in value or "/spaces/" in value:  # cheap pre-test
        return WEBHOOK_KIND if _webhook_in(value) else None
    return None


def _webhook_in(text: str) -> bool:
    """Whether `text` holds an incoming-webhook URL of a service `redact_url` knows (`_WEBHOOKS`), or its path."""
    from urllib.parse import urlsplit

    if _WEBHOOK_PATH_IN_TEXT.search(text):
        return True
    for m in _URL_IN_TEXT.finditer(text):
        try:
            parts = urlsplit(m.group(0))
        except ValueError:
            continue
        if _webhook_path(parts.netloc, parts.path) != parts.path:
            return True
    return False


def _keyed_secret(key: object, value: object) -> bool:
    return isinstance(value, str) and is_secret_name(str(key)) and not _HARMLESS.match(value.strip())


def label_secrets(labels: Any, path: tuple) -> Iterator[tuple[tuple, object, str | None]]:
    """(path, key, kind) for every label (a pipeline's metadata.labels, a profile's labels) that holds a credential,
    kind as `_walk` gives it: a value shaped like one, or a key naming one (`password`, `db_password`,
    `github_token`) with a value that is no flag, number or path, or a key holding one as a part (`token_budget`)
    with a value that is no few plain words (`high`, `per-team`). Labels are copied into the compiled pipeline,
    every run's record and the Vertex job and its model and endpoint."""
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        if not isinstance(value, str):
            continue
        kind = secret_value_kind(value)
        text = _normal_key(str(key))
        keyed = _keyed_secret(key, value) and (bool(_CREDENTIAL_LAST.search(text))
                                               or not _PLAIN_WORDS.match(value.strip()))
        if kind or keyed:
            yield path + (key,), key, kind


def redacted_labels(labels: dict) -> dict:
    """`labels` with each value `label_secrets` calls a credential REDACTED (a run recorded before such labels were
    refused keeps it in its run.json; `runs show` / `runs list` do not print it)."""
    found = {where[0] for where, _, _ in label_secrets(labels, ())}
    return {k: REDACTED if k in found else v for k, v in labels.items()}


def redacted(value: Any, key: object = None) -> Any:
    """`value`, or REDACTED when it (or its key) looks like a credential; containers are walked."""
    if isinstance(value, dict):
        return {k: redacted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if secret_value_kind(value) or (key is not None and _keyed_secret(key, value)):
        return REDACTED
    return value


# Incoming-webhook URLs, whose path is the secret (hooks.slack.com/services/T000/B000/XXXX): (host, the path's
# part kept to say which service). Slack, Discord, Microsoft Teams (Office 365 connectors), Google Chat (its
# key and token are query values, redacted as every query value is; the space goes too), and Mattermost, on
# any host (self-hosted): `/hooks/` and a 26-character id, maybe under a path (`/chat/hooks/...`).
_MATTERMOST_ID = r"[a-z0-9]{26}"
_WEBHOOKS = (
    (re.compile(r"^hooks\.slack(-gov)?\.com$"), re.compile(r"^/[^/]+/")),
    (re.compile(r"^(\w+\.)?discord(app)?\.com$"), re.compile(r"^/api/(v\d+/)?webhooks/")),
    (re.compile(r"^(outlook\.office(365)?\.com|[\w-]+\.webhook\.office\.com)$"), re.compile(r"^/webhook(b2)?/")),
    (re.compile(r"^chat\.googleapis\.com$"), re.compile(r"^/v1/spaces/")),
    (re.compile(r"^.*$"), re.compile(r"^(/[^/]+)*?/hooks/(?=" + _MATTERMOST_ID + r"([/.,:;)\]]|$))")),
)
# A webhook's secret path without its scheme, as an HTTP client's error shows it (`Max retries exceeded with
# url: /hooks/xi3k...`, `mm.example.com/hooks/...`): Mattermost's and Slack's are told by their shape.
_WEBHOOK_PATH_IN_TEXT = re.compile(r"(/hooks/)" + _MATTERMOST_ID + r"(?![A-Za-z0-9])"
                                   r"|(/services/)T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{12,}")


def _webhook_path(netloc: str, path: str) -> str:
    """A webhook URL's path with its secret part REDACTED (the service's first segments kept); else as is.
    Punctuation ending a sentence (`.../XXXX: 404`, `(see .../XXXX).`) stays."""
    host = netloc.rpartition("@")[2].split(":", 1)[0].lower()
    for host_pattern, kept in _WEBHOOKS:
        head = kept.match(path)
        if host_pattern.match(host) and head and path[head.end():].strip("/"):
            tail = path[len(path.rstrip(".,:;)]")):]
            return head.group(0) + REDACTED + tail
    return path


def redact_url(text: str) -> str:
    """`text` as messages, logs and metadata may show it: in a URL the password and every query value (a signed
    URL's signature, an access token) become REDACTED, the keys kept, and so does the secret path of a Slack,
    Discord, Teams, Google Chat or Mattermost webhook (its first segments kept); a path or a file:// URL is
    returned as is."""
    from urllib.parse import urlsplit

    if not isinstance(text, str) or "://" not in text or is_file_uri(text):
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at and ":" in user:
        netloc = f"{user.split(':', 1)[0]}:{REDACTED}@{host}"
    query = "&".join(key + (f"={REDACTED}" if eq else "")
                     for key, eq, _ in (item.partition("=") for item in parts.query.split("&"))) if parts.query else ""
    if parts.query and not parts.fragment:  # a sentence's punctuation after the URL (`...&token=T1: 404`) stays
        query += parts.query[len(parts.query.rstrip(".,:;)]")):] if query.endswith(REDACTED) else ""
    # Rebuilt by hand: urlunsplit drops the `//` of an empty authority (`memory:///reg` became `memory:/reg`).
    scheme = text[:len(parts.scheme) + 1] if parts.scheme else ""
    slashes = "//" if text[len(scheme):].startswith("//") else ""
    path = _webhook_path(parts.netloc, parts.path)
    return (f"{scheme}{slashes}{netloc}{path}" + (f"?{query}" if parts.query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


def registry_uri_problem(uri: str, *, password: bool = True) -> str | None:
    """Why a registry URI cannot be used as it is, or None: whitespace around it, or, in a remote one (s3://, gs://,
    any fsspec URI but file://), a password (unless `password` is False: a profile's credential check says it) or a query string, which s3fs /
    gcsfs read as part of the bucket or key (`s3://k:s@b/reg` is the bucket `k:s@b`), and which every model URI,
    record and message shows redacted."""
    from urllib.parse import urlsplit

    if isinstance(uri, str) and uri != uri.strip():  # any registry: `reg\n` was another folder
        return ("a registry URI cannot begin or end with whitespace (a newline kept from a file it was read from?); "
                "remove it")
    if not isinstance(uri, str) or "://" not in uri or is_file_uri(uri):
        return None
    try:
        parts = urlsplit(uri)
        what = "a password" if password and parts.password is not None else "a query string" if parts.query else ""
    except ValueError:  # a malformed authority: the store's own error says so
        return None
    if not what:
        return None
    return (f"a registry URI cannot carry {what}: fsspec's stores read it as part of the bucket or path, and model "
            "URIs and records show it redacted. Give credentials through the environment (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS) and an S3 endpoint as AWS_ENDPOINT_URL_S3")


# key=value, key: value, and the quoted keys and values of a JSON object or a Python dict in a message
# ({"password": "hunter 2"}, {'api_key': 'x'}); a quoted value runs to its closing quote.
_KEYED_IN_TEXT = re.compile(r"(?P<kq>['\"]?)(?P<key>[A-Za-z][A-Za-z0-9_.-]*)(?P=kq)(?P<sep>\s*[=:]\s*)"
                            r"(?:(?P<q>['\"])(?P<quoted>[^'\"\n]+)(?P=q)|(?P<value>[^\s'\",;&}\]]+))")
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)


def redact_text(text: str) -> str:
    """Free text (an error message bound for a webhook or a log) with every credential in it REDACTED: the
    shapes `secret_value_kind` knows, the password and query values of URLs (`redact_url`), and the value of
    `key=value` / `key: value` pairs whose key names a credential (`password=hunter2`)."""
    if not isinstance(text, str) or not text:
        return text
    for pattern, _kind in _TOKENS:
        text = pattern.sub(REDACTED, text)
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    text = _WEBHOOK_PATH_IN_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)

    def keyed(m: re.Match) -> str:
        q = m.group("q") or ""
        value = m.group("quoted") if q else m.group("value")
        if not _keyed_secret(m.group("key"), value) or value.rstrip(".,:;)]") == REDACTED:  # a URL's, already
            return m.group(0)
        kq = m.group("kq")
        return f"{kq}{m.group('key')}{kq}{m.group('sep')}{q}{REDACTED}{q}"

    return _KEYED_IN_TEXT.sub(keyed, text)


def redact_profile(profile: Any) -> Any:
    """A copy with every secret-looking value replaced by "<redacted>" (for logs)."""
    return redacted(profile)


def inline_secrets(node: Any, path: tuple = (), given: str = "written in YAML") -> list[tuple[tuple, str]]:
    """(YAML path, what to do) for every credential written inline in a profile; [] when clean.

    `given` says how it came (`passed with --set`: a command line lands in shell history and CI logs)."""
    found: list[tuple[tuple, str]] = []
    hits = list(_walk({k: v for k, v in node.items() if k != "labels"} if isinstance(node, dict) else node, path))
    if isinstance(node, dict):  # a profile's labels: by the label rule (`token_budget: high` is no credential)
        found += [(where, f"{_label_holds(key, kind)}; drop it: {_LABELS_SAY}")
                  for where, key, kind in label_secrets(node.get("labels"), path + ("labels",))]
    for where, key, kind in hits:
        if kind is None:
            found.append((where, f"credentials must not be {given}; put the value in an "
                                 f"environment variable and name it with `{key}_env: VAR_NAME` (KFP: "
                                 "auth.token_env, Vertex: application-default credentials)"))
        else:
            found.append((where, f"looks like {kind}; credentials must not be {given} - "
                                 "reference them from the environment instead"))
    return found


_LABELS_SAY = "labels say who and what (team, cost-center)"


def _label_holds(key: object, kind: str | None) -> str:
    return (f"a label holds a credential ({kind or f'`{key}` names one'}); labels are written into the compiled "
            "pipeline, every run's record and the Vertex job, model and endpoint")


def check_profile_secrets(profile: dict, where: str = "profile") -> list[str]:
    """One message per inline credential found (YAML path + what to do); [] when clean."""
    return [where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) + f": {message}"
            for path, message in inline_secrets(profile)]


def param_credentials(params: dict) -> list[tuple[str, str]]:
    """(param, what it holds: "a URL with a password", "`token` names one") for every run-time param value that
    holds a credential, by the rule a param default in YAML meets; [] when clean. The value is never said."""
    found = []
    for name, value in params.items():
        hit = next(_walk({name: value}, ()), None)
        if hit is not None:
            found.append((name, hit[2] or f"`{hit[1]}` names one"))
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

    Keys are checked where values reach a step (`env`, `with`, `inputs`, param defaults,
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
        for section in ("env", "with", "inputs"):
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
        found[where] = (where, _label_holds(key, kind), f"{_LABELS_SAY}; pass a credential to a step as "
                                                        f"`env: {{VAR: {_SECRET_REF}}}`")
    for where, key, kind in _walk(_section(data, "schedule").get("params"), ("schedule", "params"), refs_ok=True):
        found[where] = (where, f"a scheduled run's param holds a credential ({kind or f'`{key}` names one'})",
                        f"give the step `env: {{VAR: {_SECRET_REF}}}` instead")
    for where, kind in _shaped(data, ()):
        found.setdefault(where, (where, f"looks like {kind}; credentials must not be written in a pipeline",
                                 f"pass it to a step as `env: {{VAR: {_SECRET_REF}}}`"))
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
        if refs_ok and not kind and _WHOLE_REF.match(node.strip()):
            return
        if kind or (key is not None and _keyed_secret(key, node)):
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
