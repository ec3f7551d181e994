"""One registered model version, the registry's error, and who-did-it audit records."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import getpass
import json
import os
from dataclasses import asdict, dataclass, field

from kubepipe.components.errors import ComponentError, ServiceFailed
from kubepipe.json_values import null_as_nan

__all__ = ["ModelVersion", "RegistryError", "RegistryUnavailable", "ChampionMoved", "current_user", "audit_record", "utc_now", "errno_text",
           "storage_failed", "need_reason", "load_version", "ABANDONED", "version_text",
           "URI_SOURCE", "PROFILE_SOURCE"]

ALIASES = ("champion", "previous")
ABANDONED = "abandoned"  # the key of the version.json `models gc` creates to win a version from its stalled writer


class RegistryError(ComponentError):
    """The registry cannot do what was asked: unknown model/version, corrupt entry, bad name."""


class RegistryUnavailable(RegistryError, ServiceFailed):
    """The registry's storage or service failed or did not answer (EIO, no connection, 5xx): the work failed, not
    the request, so the CLI exits 1 (docs/cli.md's exit codes); a RegistryError for every `except` of one."""


class ChampionMoved(RegistryError):
    """Another writer moved the champion between a move's read and its write (or since the champion a deploy
    expected to replace was read): nothing was changed."""


# Where a registry URI was given, as its errors tell the user to check it, when the opener does not say (a
# profile's registry_uri, --set registry_uri: the caller names it)
URI_SOURCE = "--registry / KUBEPIPE_REGISTRY"
# A pipeline step's registry: the profile's registry_uri, compiled into the pipeline (ctx_registry_uri)
PROFILE_SOURCE = "the profile's registry_uri (configs/<target>.yaml or --set registry_uri)"


def version_text(version) -> str:
    """A version as reports name it: `v3`; `(no registry version)` for none (a deploy without a registry), which a
    deploy report's title showed as `vNone`."""
    return "(no registry version)" if version in (None, "") else f"v{version}"


def errno_text(exc: OSError) -> str:
    """`Input/output error (EIO)`: the errno's text and name."""
    code = errno.errorcode.get(exc.errno or 0, "")
    return f"{exc.strerror or exc}" + (f" ({code})" if code else "")


def storage_failed(path: str, exc: OSError, doing: str) -> RegistryError:
    """An OSError other than absence (EIO, ESTALE): the storage failed; absence must not be assumed."""
    return RegistryUnavailable(f"{path}: cannot {doing}: {errno_text(exc)}; retry, or check the storage (a network mount "
                         "or bucket?)", retryable=True)


# What `models show` prints or reads: a wrong type there was an internal error ('int' has no attribute 'rstrip').
_FIELD_TYPES = {"metrics": dict, "audit": list, "metadata": dict, "files": dict, "data_hash": str, "run_id": str,
                "code_version": str, "model_card": str, "created_at": str, "created_by": str, "store_checksums": dict}


@dataclass(frozen=True)
class ModelVersion:
    """A version as stored in `<name>/versions/<n>/version.json` (immutable once written).

    `status` is `ok`, `corrupt` (version.json unreadable; `error` says why) or
    `incomplete` (the writer died or is still copying; no version.json yet).
    """

    name: str
    version: int
    model_uri: str = ""
    metrics: dict = field(default_factory=dict)
    data_hash: str = ""
    run_id: str = ""
    code_version: str = ""
    model_card: str = ""
    audit: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # relative path -> sha256
    # relative path -> the object store's own checksum (S3 `ETag:...`, GCS `crc32c:...`) as registered: a promote
    # compares them in one listing instead of downloading the version; {} on a local store (hashed in place)
    store_checksums: dict = field(default_factory=dict)
    created_at: str = ""
    created_by: str = ""
    status: str = "ok"
    error: str | None = None
    aliases: tuple = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict, *, name: str, version: int, model_uri: str) -> "ModelVersion":
        """Build from stored JSON; raises ValueError/TypeError on a malformed entry."""
        if not isinstance(d, dict):
            raise ValueError("version.json does not hold a JSON object")
        # type(), not ==: `true` and `1.0` equal 1, and were shown as vTrue / v1.0
        if type(d.get("version")) is not int or d["version"] != version or d.get("name") != name:
            raise ValueError(
                f"version.json says {d.get('name')!r} v{d.get('version')!r}, expected {name!r} v{version}"
            )
        for key, typ in _FIELD_TYPES.items():
            if not isinstance(d.get(key, typ()), typ):
                raise ValueError(f"field `{key}` must be a {typ.__name__}")
        if not all(isinstance(a, dict) for a in d.get("audit", [])):
            raise ValueError("field `audit` must be a list of objects")
        known = {f for f in cls.__dataclass_fields__} - {"status", "error", "aliases", "model_uri"}
        kwargs = {k: v for k, v in d.items() if k in known}
        # an undefined metric is stored as null (files.dump: NaN is not JSON) and is NaN again here, as registered
        kwargs["metrics"] = null_as_nan(d.get("metrics", {}))
        return cls(**kwargs, model_uri=model_uri)


def load_version(store, name: str, n: int, aliases: tuple) -> ModelVersion:
    """Version `n` of model `name` as `store` holds it: `ok`, or `incomplete` / `corrupt` with `error` saying why."""
    base = f"{name}/versions/{n}"
    uri = store.uri(f"{base}/model")
    try:
        raw = store.read(f"{base}/version.json")
    except FileNotFoundError:
        return ModelVersion(
            name=name, version=n, model_uri=uri, status="incomplete", aliases=aliases,
            error=f"model `{name}` v{n} is incomplete: its registration did not finish (writer killed or "
            f"still copying); {store.uri(base)} has no version.json",
        )
    except (PermissionError, IsADirectoryError) as exc:  # one version's: was the whole `models list` failing
        return ModelVersion(name=name, version=n, model_uri=uri, status="corrupt", aliases=aliases,
                            error=f"model `{name}` v{n} is unreadable: {store.uri(base)}/version.json: "
                            f"{errno_text(exc)}; fix its permissions (a folder there: move it away); the other "
                            "versions are unaffected")
    except OSError as exc:  # EIO, ESTALE: the storage failed, not the version ('check the path ... is writable')
        raise storage_failed(f"{store.uri(base)}/version.json", exc, "read it") from exc
    if not raw:  # a create without hard links killed between its empty claim and its rename (LocalStore.create)
        return ModelVersion(name=name, version=n, model_uri=uri, status="incomplete", aliases=aliases,
                            error=f"model `{name}` v{n} is incomplete: its registration was killed while committing "
                            f"({store.uri(base)}/version.json is empty); `kubepipe models gc` removes it")
    try:
        d = json.loads(raw.decode("utf-8"))
        if isinstance(d, dict) and ABANDONED in d:  # `models gc` is removing it (or was killed doing so)
            return ModelVersion(name=name, version=n, model_uri=uri, status="incomplete", aliases=aliases,
                                error=f"model `{name}` v{n} is incomplete: its registration was abandoned and "
                                f"`kubepipe models gc` is removing {store.uri(base)}")
        mv = ModelVersion.from_dict(d, name=name, version=n, model_uri=uri)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        return ModelVersion(
            name=name, version=n, model_uri=uri, status="corrupt", aliases=aliases,
            error=f"model `{name}` v{n} is corrupt: {store.uri(base)}/version.json: {exc}; "
            "register the model again (the other versions are unaffected)",
        )
    return dataclasses.replace(mv, aliases=aliases)


def current_user() -> str:
    """Who acts: KUBEPIPE_USER, else USER, else the login name."""
    who = os.environ.get("KUBEPIPE_USER") or os.environ.get("USER")
    if not who:
        try:
            who = getpass.getuser()
        except Exception:  # noqa: BLE001 - no passwd entry in some containers
            who = "unknown"
    return who


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def need_reason(action: str, reason) -> str:
    """The reason an alias move or history event records, stripped; a blank one is refused, for every action (a
    `models rollback --reason ""` recorded 'rollback' while promote refused it)."""
    text = str(reason or "").strip()
    if not text:
        raise RegistryError(f"{action} needs a reason (it is kept in the history): give --reason '...'")
    return text


def audit_record(action: str, reason: str = "", **extra) -> dict:
    """An audit entry: what, who, when, why (plus any extra context)."""
    return {"action": action, "by": current_user(), "at": utc_now(), "reason": reason, **extra}
