"""A version's model files against the sha256s recorded when it was registered (`models verify`, and the check
`model_path` makes before a version is served or evaluated)."""

from __future__ import annotations

from kubepipe.components.registry import stat_digests
from kubepipe.components.registry.files import hash_tree
from kubepipe.components.registry.store import LocalStore
from kubepipe.components.registry.version import ModelVersion, RegistryError, errno_text

__all__ = ["changes", "verify", "refuse_changed", "refuse_changed_stored", "holds", "sums"]


def changes(recorded: dict, now: dict) -> dict:
    """{"changed", "missing", "added"}: the file paths of `now` ({path: sha256}) that differ from `recorded`."""
    return {"changed": sorted(f for f in recorded if f in now and now[f] != recorded[f]),
            "missing": sorted(f for f in recorded if f not in now),
            "added": sorted(f for f in now if f not in recorded)}


def verify(store, mv: ModelVersion) -> dict:
    """{"version", "path", "changed", "missing", "added"} (the model folder; file paths, all empty when intact), and
    `error` when its files cannot be read at all (a dangling link in the folder): `models verify` of every version
    stopped there, the others unchecked."""
    with store.local_tree(f"{mv.name}/versions/{mv.version}/model") as folder:
        try:
            now = stored_files(mv, folder)
        except RegistryError as exc:
            return {"version": mv.version, "path": mv.model_uri, "changed": [], "missing": [], "added": [],
                    "error": str(exc)}
    return {"version": mv.version, "path": mv.model_uri, **changes(mv.files, now)}


def stored_files(mv: ModelVersion, folder: str) -> dict:
    """`hash_tree` of a local copy of `mv`'s model folder; a file there that cannot be read (a dangling link, no
    permission) is a RegistryError naming the version (was the registering advice, or a raw PermissionError)."""
    try:
        return hash_tree(folder)
    except (RegistryError, OSError) as exc:
        raise unreadable(mv, exc) from None


def unreadable(mv: ModelVersion, exc: Exception) -> RegistryError:
    why = errno_text(exc) if isinstance(exc, OSError) else str(exc)
    return RegistryError(f"model `{mv.name}` v{mv.version}: its files in {mv.model_uri} cannot be read "
                         f"({why}); register the model again, or promote a sound version (kubepipe models "
                         f"promote {mv.name} VERSION --reason ...)")


def refuse_changed(store, mv: ModelVersion, path: str, doing: str = "use them") -> None:
    """`path` (a local copy of `mv`'s model folder) must hold the files registered; else it is dropped and refused.
    Versions registered before `files` was recorded are not checked."""
    try:
        diff = changes(mv.files, stored_files(mv, path)) if mv.files else {}
    except RegistryError:
        store.drop_local(path)
        raise
    refuse_diff(store, mv, path, diff, doing)


def refuse_diff(store, mv: ModelVersion, path: str, diff: dict, doing: str) -> None:
    if any(diff.values()):
        store.drop_local(path)
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in diff.items() if v)
        raise RegistryError(f"model `{mv.name}` v{mv.version}: files changed after registration in {mv.model_uri} "
                            f"({what}); refusing to {doing}: register the model again, or promote a sound "
                            f"version (kubepipe models promote {mv.name} VERSION --reason ...)")


def refuse_changed_stored(store, mv: ModelVersion, doing: str) -> None:
    """`refuse_changed` on the store's own copy of `mv` (a remote store's downloaded for the check, then removed):
    a version whose files changed never becomes champion (deploy refused it only later). Where the version recorded
    the store's checksums (S3 ETags, GCS crc32c) and one listing finds them all unchanged, nothing is downloaded; a local
    store hashes only the files whose stat changed since they were last found intact (stat_digests)."""
    folder = f"{mv.name}/versions/{mv.version}/model"
    if mv.files and mv.store_checksums.keys() == mv.files.keys() and store.checksums(folder) == mv.store_checksums:
        return  # the store's own checksums as registered, in one listing: no download (else the full check)
    if mv.files and isinstance(store, LocalStore):  # the stat of each file as last checked (stat_digests)
        version_dir = store.uri(f"{mv.name}/versions/{mv.version}")
        started = stat_digests.check_started()
        try:
            now, keys = stat_digests.current_files(version_dir, store.uri(folder))
        except (RegistryError, OSError) as exc:
            raise unreadable(mv, exc) from None
        refuse_diff(store, mv, store.uri(folder), changes(mv.files, now), doing)
        stat_digests.record(version_dir, mv.files, keys, started)
    elif mv.files:
        with store.local_tree(folder) as copy:
            refuse_changed(store, mv, copy, doing)


def sums(store, base: str, files: dict) -> dict:
    """The store's checksums of the files just copied to `base`/model, kept only when they are all there."""
    found = store.checksums(f"{base}/model")
    return found if found.keys() == files.keys() else {}


def holds(mv: ModelVersion, model_dir: str) -> bool:
    """Whether the local folder `model_dir` holds exactly `mv`'s registered files (the same paths and sha256s): the
    candidate of a run resumed after it registered (and promoted) it is that version, not another model."""
    return bool(mv.files) and hash_tree(model_dir) == mv.files
