"""Move the registry's champion after a successful rollout, and only then.

One small function so that every target (local, KServe, Vertex) goes through
the same rule and tests can point it at a real registry in a temp folder.
"""

from __future__ import annotations

import sys

from kubepipe.components.registry.aliases import ANY
from kubepipe.components.registry.version import RegistryError

__all__ = ["current_champion", "promote_champion", "audit_rollback", "ANY", "PromotionFailed"]


class PromotionFailed(RegistryError):
    """The registry could not move the champion after a good rollout (its storage failing, the version's files
    changed): the deploy rolls back, as for ChampionMoved, and the message says so."""


def promote_champion(registry_uri: str | None, name: str, version, *, reason: str, profile: dict | None = None,
                     credentials=None, details: dict | None = None, expect=ANY) -> dict:
    """`open_registry(uri, profile).promote(name, version, reason=...)`; a summary dict for the report.

    With the profile's `vertex_model_registry: true`, Vertex AI Model Registry's aliases move too.
    `details` (the canary analysis) go into the promotion's history event. `expect`: the champion the deploy read
    before its rollout (`current_champion`); when another version is champion now (a `models promote` during the
    canary bake), nothing moves and ChampionMoved says which, and what to do."""
    if not registry_uri or version in (None, ""):
        return {"moved": False, "why": "no registry URI or no version given; champion not touched"}
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.registry import ChampionMoved, open_registry
    from kubepipe.components.registry.version import PROFILE_SOURCE
    from kubepipe.components.registry.vertex import AliasSyncFailed

    try:
        reg = open_registry(registry_uri, profile, credentials=credentials, source=PROFILE_SOURCE)
        mv = reg.promote(name, version, reason=reason, details=details, expect=expect)
    except ChampionMoved as exc:
        raise ChampionMoved(f"deploy of `{name}` v{version}: {exc}; the deploy was rolled back (the new version "
                            f"does not serve); if v{version} should still be champion, run the deploy again (or "
                            f"`kubepipe models promote {name} {version} --reason ...`)") from None
    except AliasSyncFailed as exc:  # the registry (the source of truth) moved: the rollout goes on, and says so
        error = f"deploy of `{name}` v{version}: {exc}"
        print(f"warning: {error}", file=sys.stderr, flush=True)
        return {"moved": reg.replaced != exc.version, "version": exc.version, "from_version": reg.replaced,
                "reason": reason, "vertex_aliases": {"synced": False, "error": error}}
    except ImportError:  # the missing extra, as the CLI names it
        raise
    except Exception as exc:  # noqa: BLE001 - any store's failure (fsspec, gcsfs, s3fs raise their own types)
        # was the store's own error after the traffic switch: on Vertex the old models stayed deployed, the new one
        # took all traffic, and the champion had not moved, with nothing saying so
        from kubepipe.secrets import redact_text

        why = redact_text(str(exc) if isinstance(exc, ComponentError) else f"{type(exc).__name__}: {exc}")
        raise PromotionFailed(f"deploy of `{name}` v{version}: the rollout passed, but the registry's champion could "
                              f"not be moved to it: {why}; the deploy was rolled back (the new version does not "
                              "serve, the champion is as it was); run the deploy again once the registry is sound",
                              retryable=exc.retryable if isinstance(exc, ComponentError) else True) from exc
    if reg.replaced == mv.version:  # a re-run (a resumed run): it was champion already, nothing moved
        return {"moved": False, "version": mv.version, "from_version": reg.replaced, "reason": reason,
                "why": f"v{mv.version} was already champion; nothing moved"}
    return {"moved": True, "version": mv.version, "from_version": reg.replaced, "reason": reason}


def current_champion(registry_uri: str | None, name: str):
    """The champion's version number, or None."""
    if not registry_uri:
        return None
    from kubepipe.components.registry import step_registry

    return step_registry(registry_uri).aliases(name)["champion"]


def audit_rollback(registry_uri: str | None, name: str, version, *, reason: str, details: dict | None = None) -> dict:
    """Record a rollout rolled back by canary analysis in the registry's history (no alias moves).

    Called after the rollback is done: a registry that fails here (unreachable, denied) is a warning on stderr and
    `{"recorded": False, "error": ...}` in the report, not a failed deploy step that hid the rollback."""
    if not registry_uri or version in (None, ""):
        return {"recorded": False, "why": "no registry URI or no version given"}
    from kubepipe.components.registry import step_registry

    try:
        event = step_registry(registry_uri).record_event(name, "canary-rollback", reason=reason, version=version,
                                                    details=details)
    except Exception as exc:  # noqa: BLE001 - any store's failure (fsspec, gcsfs, s3fs raise their own types)
        from kubepipe.secrets import redact_text

        error = (f"the rollback of `{name}` v{version} is done and the champion did not move, but its "
                 f"`canary-rollback` event could not be written to the registry's history: {type(exc).__name__}: "
                 f"{redact_text(str(exc))}; `kubepipe models history {name}` will not show it (check the "
                 "registry's storage and credentials)")
        print(f"warning: {error}", file=sys.stderr, flush=True)
        return {"recorded": False, "error": error}
    return {"recorded": True, "at": event.get("at")}
