"""Credentials never live in YAML: find inline secrets in a target profile.

Auth comes from the environment: a KFP bearer token from the env var the profile names
(`auth: {token_env: KFP_TOKEN}`) or a kubeconfig; Vertex uses application-default credentials.
A profile may *name* where a secret lives (`*_env`, `*_file`, `kubeconfig`), never hold it.
Sits below every layer (like kubepipe.errors) so the spec loader and the backends can both call it.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_profile_secrets", "inline_secrets", "redact_profile"]

# Keys whose value would be the secret itself.
_SECRET_KEY = re.compile(
    r"(^|_)(token|access_token|id_token|bearer|password|passwd|secret|client_secret|api_key|apikey|"
    r"private_key|credentials?|cookie|cookies|auth_header)$",
    re.IGNORECASE,
)
# Keys that only say where the secret is: allowed.
_REFERENCE_KEY = re.compile(r"(_env|_file|_path|_name|_ref)$|^(kubeconfig|kube_context|service_account)$", re.I)
# Values that are secrets whatever their key.
_SECRET_VALUE = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r'"private_key"\s*:'), "a service-account key (JSON)"),
    (re.compile(r"^Bearer\s+\S{8,}", re.I), "a bearer token"),
    (re.compile(r"^eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."), "a JWT"),
    (re.compile(r"^AIza[0-9A-Za-z_-]{35}$"), "a Google API key"),
    (re.compile(r"^(ghp|gho|github_pat|xox[abp])_[A-Za-z0-9_]{10,}"), "an access token"),
    (re.compile(r"^ya29\.[A-Za-z0-9_.-]{20,}"), "an OAuth access token"),
]


def check_profile_secrets(profile: dict, where: str = "profile") -> list[str]:
    """One message per inline credential found (YAML path + what to do); [] when clean."""
    problems: list[str] = []
    _walk(profile, where, problems)
    return problems


def redact_profile(profile: Any) -> Any:
    """A copy with every secret-looking value replaced by "<redacted>" (for ctx_profile, logs)."""
    if isinstance(profile, dict):
        out = {}
        for k, v in profile.items():
            if isinstance(v, str) and _is_secret_key(str(k)) and v:
                out[k] = "<redacted>"
            else:
                out[k] = redact_profile(v)
        return out
    if isinstance(profile, list):
        return [redact_profile(v) for v in profile]
    if isinstance(profile, str) and _secret_value_kind(profile):
        return "<redacted>"
    return profile


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _REFERENCE_KEY.search(key)


def _secret_value_kind(value: str) -> str | None:
    for pattern, kind in _SECRET_VALUE:
        if pattern.search(value.strip()):
            return kind
    return None


def inline_secrets(node: Any, path: tuple = ()) -> list[tuple[tuple, str]]:
    """(YAML path, what to do) for every credential written inline; [] when clean."""
    found: list[tuple[tuple, str]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and v and _is_secret_key(str(k)):
                found.append((path + (k,), "credentials must not be written in YAML; put the value in an "
                              f"environment variable and name it with `{k}_env: VAR_NAME` (KFP: "
                              "auth.token_env, Vertex: application-default credentials)"))
                continue
            found += inline_secrets(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += inline_secrets(v, path + (i,))
    elif isinstance(node, str):
        kind = _secret_value_kind(node)
        if kind:
            found.append((path, f"looks like {kind}; credentials must not be written in YAML - "
                                "reference them from the environment instead"))
    return found


def _walk(node: Any, path: str, problems: list[str]) -> None:
    for where, message in inline_secrets(node):
        text = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
        problems.append(f"{text}: {message}")
