"""The model registry: immutable versions plus `champion` / `previous` aliases.

Layout under the registry root (any store, see `store.py`):

    <name>/versions/<n>/claim.json    who took number n (exclusive create)
    <name>/versions/<n>/model/...     the model files, copied in
    <name>/versions/<n>/version.json  metadata; written last, so its presence commits the version
    <name>/aliases/<gen>.json         alias state, one immutable file per generation
    .names/<name, lower case>.json    which spelling of a name the registry holds (exclusive create)

Alias moves are compare-and-swap: read the newest generation g, compute the new
state, exclusively create generation g+1; whoever loses re-reads and retries.
No lock is held, so a writer killed at any point leaves nothing to clean up, and
two runs promoting at once are serialised (no lost update). The generation
files double as the promotion history.

`Registry` is registration and clean-up (`gc`); its reads (names, versions, an alias or number resolved, the
history, a version's files) are `listing.RegistryListing`'s, its alias moves `moves.AliasMoves`'.
"""

from __future__ import annotations

import os
import time

from kubepipe.components.checks import MODEL_NAME
from kubepipe.components.registry import integrity
from kubepipe.components.registry.claims import check_claim, claim, claim_name, commit, discard_unfinished
from kubepipe.components.registry.files import dump, hash_tree, jsonable, number_metrics
from kubepipe.components.registry.gc import sweep, sweep_names
from kubepipe.components.registry.listing import check_name
from kubepipe.components.registry.moves import AliasMoves
from kubepipe.components.registry.same_files import files_key, first_same, newest_same
from kubepipe.components.registry.store import LocalStore, open_store
from kubepipe.components.registry.version import (
    ALIASES,
    ModelVersion,
    RegistryError,
    URI_SOURCE,
    current_user,
    utc_now,
)
from kubepipe.util import failpoint

__all__ = ["Registry", "DEFAULT_URI"]

DEFAULT_URI = "file://.kubepipe/registry"


class Registry(AliasMoves):
    """`Registry(uri)`: `file://path` (relative to cwd), a plain path or any fsspec URI; `source`: where it's from."""

    def __init__(self, uri: str | None = None, *, source: str = URI_SOURCE):
        self.uri = uri or DEFAULT_URI
        self.store = open_store(self.uri, source)
        # The champion the last promote / rollback through this object replaced, as its compare-and-swap read it
        # (a number read before the move was stale under concurrent moves: `"was": 7` for a move off v3).
        self.replaced: int | None = None
        # Whether the last `register` through this object found its files already there as a version (and returned
        # that version instead of adding one): a resumed run registering its model again.
        self.existing = False

    def __repr__(self) -> str:
        return f"Registry({self.store.uri()!r})"

    # ---- versions -------------------------------------------------------------------------

    def register(
        self,
        model_dir: str,
        *,
        name: str,
        metrics: dict | None = None,
        data_hash: str = "",
        run_id: str = "",
        code_version: str = "",
        model_card: str = "",
        audit: list | None = None,
        metadata: dict | None = None,
        reuse_same: bool = False,
    ) -> ModelVersion:
        """Copy a model folder in as the next version; does NOT move any alias.

        `reuse_same` (register-model's): a folder whose files (paths and sha256s) are those of a sound version of
        `name` is not added again; that version is returned and `self.existing` says so (a run resumed after its
        register step, or re-run, made no duplicate of the same bytes; its metrics and run stay those recorded
        first)."""
        check_name(name)
        model_dir = os.fspath(model_dir)
        if not os.path.isdir(model_dir):
            raise RegistryError(f"cannot register {model_dir!r}: not a folder; pass the Model artifact's directory")
        here = os.path.realpath(model_dir)
        if isinstance(self.store, LocalStore) and os.path.commonpath([here, os.path.realpath(self.store.root)]) == here:
            # was a copy of the copy in progress, nested until 'File name too long' ('... free space')
            raise RegistryError(f"cannot register {model_dir!r}: it holds the registry itself ({self.store.root}); "
                                "pass the Model artifact's directory (a train step's `model`)")
        files = hash_tree(model_dir)
        if not files:  # was an `ok` version with nothing in it, `models verify` said intact
            raise RegistryError(f"cannot register {model_dir!r}: the folder holds no files; pass the Model artifact's "
                                "directory (a train step's `model`)")
        entry = {
            "name": name,
            "data_hash": str(data_hash or ""),  # strings, as ModelVersion.from_dict reads them back
            "run_id": str(run_id or ""),
            "code_version": str(code_version or ""),
            "model_card": str(model_card or ""),
            "audit": jsonable(audit or []),
            "metadata": jsonable(metadata or {}),
            "files": files,
            "created_by": current_user(),
        }
        try:  # read back as it will be: `metrics=[0.9]` was committed, then every read said 'corrupt'
            entry["metrics"] = number_metrics({} if metrics is None else metrics)
            ModelVersion.from_dict({**entry, "version": 0}, name=name, version=0, model_uri="")
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"cannot register {model_dir!r} as `{name}`: {exc}; nothing was registered") from None
        claim_name(self.store, name, lambda d: bool(self._numbers(d) or self._generations(d)))
        self.existing = False
        known = self.versions(name) if reuse_same else []
        same = newest_same(known, files)
        if same is not None:
            self.existing = True
            return same
        n, token = claim(self.store, name, lambda: self._taken(name), files_key(files))
        base = f"{name}/versions/{n}"
        try:  # a registration of the same files at the same moment, with a lower number, goes first (same_files)
            same = first_same(self.store, name, n, files, known, lambda: self._numbers(name),
                              lambda m: self._load(name, m, {})) if reuse_same else None
            if same is not None:
                discard_unfinished(self.store, name, n, token)
                self.existing = True
                return self.get(name, same.version)
            self.store.put_tree(model_dir, f"{base}/model")
            failpoint("register.copied")
            entry.update(version=n, created_at=utc_now(), store_checksums=integrity.sums(self.store, base, files))
            commit(self.store, name, n, token, dump(entry))
        except BaseException as exc:
            discard_unfinished(self.store, name, n, token)
            if isinstance(exc, FileNotFoundError):  # its folder removed under the copy: `models gc`, if no longer ours
                check_claim(self.store, name, n, token)
            if isinstance(exc, OSError):  # a full disk, a read-only store: say where, keep the errno
                raise RegistryError(f"model `{name}` v{n}: registering into {self.store.uri(base)} failed: {exc}; "
                                    "its partial files were removed; free space (or fix the store) and register "
                                    "again") from exc
            raise
        return self.get(name, n)

    def gc(self, name: str | None = None, *, older_than_s: float = 3600.0, dry_run: bool = False) -> list[dict]:
        """Remove incomplete versions (registration died) older than `older_than_s`, and the temp files of a
        create killed midway (`.tmp-*` in `aliases/`, `versions/<n>/`, its `live/`) as old; returns what was removed.

        A version any alias generation points to (champion, previous, anything on the rollback
        stack) is never touched, nor a complete or corrupt one (corrupt needs a person). See `gc.py`.
        """
        # Every model folder, versions or not: a model whose versions are all gone kept its aliases/ temp files
        folders = [d for d in self.store.listdir()
                   if MODEL_NAME.match(d) and (self._numbers(d) or self._generations(d))]
        names = [name] if name else folders
        if name:
            check_name(name)
            if name not in folders:
                self._check_known(name)  # a typo is not "nothing to remove"
        removed = []
        now = time.time()
        for n_ in names:
            check_name(n_)
            state = self._state(n_)
            protected = set(state.get("stack") or []) | {state.get(a) for a in ALIASES}
            removed += sweep(self.store, n_, self.versions(n_), protected, now=now, older_than_s=older_than_s,
                             dry_run=dry_run)
        if not name:  # a killed name claim's temp files (.names/)
            removed += sweep_names(self.store, now=now, older_than_s=older_than_s, dry_run=dry_run)
        return removed

    def version_holding(self, name: str, model_dir: str) -> ModelVersion | None:
        """The newest sound version of `name` whose files are exactly those of the local folder `model_dir` (the
        version `register(..., reuse_same=True)` returns for it), or None."""
        check_name(name)
        return newest_same(self.versions(name), hash_tree(os.fspath(model_dir))) if os.path.isdir(model_dir) else None
