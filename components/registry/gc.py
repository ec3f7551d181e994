"""`models gc`: what a registration or an exclusive create killed midway left behind, once it is old enough.

An incomplete version (a `versions/<n>/` with no version.json, or an empty one: a create without hard links killed
before its rename) and the `.tmp-*` files of a create killed before
its link (LocalStore.create) are ignored by readers but never removed by them; `sweep` removes those older than
`older_than_s`; a version is first taken from its (stalled) writer by creating its version.json, marked `abandoned`
(claims.abandon / claims.commit). A version an alias generation points to is never touched, nor a complete or corrupt one (corrupt
needs a person).
"""

from __future__ import annotations

from kubepipe.components.registry.claims import NAMES, abandon, claim_path, is_empty
from kubepipe.components.registry.store import TEMP_PREFIX
from kubepipe.components.registry.version import ModelVersion

__all__ = ["sweep", "sweep_names"]


def sweep(store, name: str, versions: list[ModelVersion], protected: set, *, now: float, older_than_s: float,
          dry_run: bool) -> list[dict]:
    """Remove (unless `dry_run`) model `name`'s abandoned versions and temp files; what was removed."""
    removed = []
    for v in versions:
        if v.status != "incomplete" or v.version in protected:
            continue
        base = f"{name}/versions/{v.version}"
        entry = f"{base}/version.json"
        # an empty version.json (a commit killed between its empty claim and its rename) is aged from that commit,
        # not from the version's claim: a live writer's registration may have copied for longer than older_than_s
        since = ((store.mtime(entry) if is_empty(store, entry) else None) or store.mtime(claim_path(name, v.version))
                 or store.mtime(base))
        age = None if since is None else now - since
        if age is None or age < older_than_s:
            continue
        if not dry_run:
            if not abandon(store, name, v.version):
                continue  # its writer committed it since it was listed
            store.remove_tree(base)
        removed.append({"name": name, "version": v.version, "what": "incomplete version",
                        "age_s": round(age, 1), "path": store.uri(base)})
    return removed + _temps(store, name, [v.version for v in versions], now, older_than_s, dry_run)


def sweep_names(store, *, now: float, older_than_s: float, dry_run: bool) -> list[dict]:
    """The `.tmp-*` files a killed name claim (claims.claim_name) left in `.names/`, once as old."""
    return _temps(store, None, [], now, older_than_s, dry_run, folders=[(None, NAMES)])


def _temps(store, name: str | None, numbers: list[int], now: float, older_than_s: float, dry_run: bool,
           folders: list | None = None) -> list[dict]:
    """A create killed before its link left `.tmp-*` beside the file it was writing (LocalStore.create): in
    `aliases/`, `versions/<n>/` or `versions/<n>/live/` (monitor-live's records). Ignored by readers, but never
    removed by them; those as old as an abandoned version are."""
    if folders is None:
        folders = [(None, f"{name}/aliases")]
        folders += [(n, f"{name}/versions/{n}{sub}") for n in numbers for sub in ("", "/live")]
    removed = []
    for version, folder in folders:
        for entry in store.listdir(folder):
            if not entry.startswith(TEMP_PREFIX):
                continue
            rel = f"{folder}/{entry}"
            since = store.mtime(rel)
            if since is None or now - since < older_than_s:
                continue
            if not dry_run:
                store.remove_file(rel)
            removed.append({"name": name, "version": version, "what": "temp file",
                            "age_s": round(now - since, 1), "path": store.uri(rel)})
    return removed
