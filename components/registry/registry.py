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
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from kubepipe.components.checks import MODEL_NAME, MODEL_NAME_RULE
from kubepipe.components.registry import integrity
from kubepipe.components.registry.aliases import ANY, event_details, moved_under, promotion, read_history, read_state
from kubepipe.components.registry.aliases import swap
from kubepipe.components.registry.claims import check_claim, claim, claim_name, commit, discard_unfinished
from kubepipe.components.registry.files import dump, gen_number, hash_tree, jsonable, number_metrics, version_number
from kubepipe.components.registry.gc import sweep, sweep_names
from kubepipe.components.registry.same_files import files_key, first_same, newest_same
from kubepipe.components.registry.store import LocalStore, open_store
from kubepipe.components.registry.version import (
    ALIASES,
    ModelVersion,
    RegistryError,
    URI_SOURCE,
    audit_record,
    load_version,
    current_user,
    need_reason,
    utc_now,
)
from kubepipe.util import did_you_mean, failpoint, whole_number

__all__ = ["Registry", "DEFAULT_URI", "MODEL_FOLDER_HINT"]

DEFAULT_URI = "file://.kubepipe/registry"
MODEL_FOLDER_HINT = "this folder is one model's (it holds versions/): give its parent as --registry"
_NAME = MODEL_NAME


class Registry:
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
        _check_name(name)
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
        folders = [d for d in self.store.listdir() if _NAME.match(d) and (self._numbers(d) or self._generations(d))]
        names = [name] if name else folders
        if name:
            _check_name(name)
            if name not in folders:
                self._check_known(name)  # a typo is not "nothing to remove"
        removed = []
        now = time.time()
        for n_ in names:
            _check_name(n_)
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
        _check_name(name)
        return newest_same(self.versions(name), hash_tree(os.fspath(model_dir))) if os.path.isdir(model_dir) else None

    def names(self) -> list[str]:
        """Model names held in the registry."""
        return [d for d in self.store.listdir() if _NAME.match(d) and self.store.listdir(f"{d}/versions")]

    def versions(self, name: str, *, known: bool = False) -> list[ModelVersion]:
        """Every version, oldest first; corrupt or unfinished ones are listed with their status.

        `known`: a name without versions raises (a typo or another registry) instead of returning []."""
        _check_name(name)
        numbers = self._numbers(name)
        if known:
            self._check_known(name, numbers)
        state = self._state(name)
        return [self._load(name, n, state) for n in numbers]

    def get(self, name: str, version: int | str) -> ModelVersion:
        """One version (a number, or an alias name); raises RegistryError if missing or corrupt."""
        _check_name(name)
        state = self._state(name)
        n = self._resolve(name, version, state)
        numbers = self._numbers(name)
        if n not in numbers:
            self._check_known(name, numbers)
            have = ", ".join(str(v) for v in numbers)
            if version in ALIASES:  # was 'has no version champion': the alias names a version whose folder is gone
                raise RegistryError(
                    f"model `{name}`'s {version} is v{n}, but {self.store.uri(f'{name}/versions/{n}')} is gone "
                    f"(versions: {have}); promote a version that is there: kubepipe models promote {name} VERSION "
                    "--reason ...")
            raise RegistryError(
                f"model `{name}` has no version {version} in {self.store.uri()} (versions: {have}); "
                "see `kubepipe models list`"
            )
        mv = self._load(name, n, state)
        if not mv.ok:
            raise RegistryError(mv.error or f"model `{name}` v{n} is {mv.status}")
        return mv

    def alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version an alias points at, or None when it is unset (e.g. the first run)."""
        _check_name(name)
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias `{alias}`; aliases are: {', '.join(ALIASES)}")
        n = self._state(name).get(alias)
        return None if n is None else self.get(name, n)

    def aliases(self, name: str) -> dict:
        """{"champion": n, "previous": n} as the newest alias state says (None: unset), without loading the versions:
        reporting what a move replaces must not need the old champion's files (they may be gone)."""
        _check_name(name)
        state = self._state(name)
        return {a: state.get(a) for a in ALIASES}

    def model_path(self, name: str, version: int | str) -> str:
        """A local folder holding the version's model files (downloaded for remote stores), checked against the
        sha256s recorded at registration: a changed file is refused (the loader checks only the weights, so an
        edited kubepipe-model.json, its labels swapped, was deployed and evaluated as it was)."""
        mv = self.get(name, version)
        path = self.store.local_path(f"{name}/versions/{mv.version}/model")
        integrity.refuse_changed(self.store, mv, path)
        return path

    @contextlib.contextmanager
    def model_files(self, name: str, version: int | str) -> Iterator[str]:
        """`model_path` for the `with` block: a remote store's download is removed after it (every local run
        against an s3:// registry left one per champion it read in /tmp)."""
        path = self.model_path(name, version)
        try:
            yield path
        finally:
            self.store.drop_local(path)

    def verify(self, name: str, version: int | str) -> dict:
        """The version's files against the sha256s recorded when it was registered: {"version", "path", "changed",
        "missing", "added"} (the model folder; file paths, all empty when intact). Serving and evaluation refuse a
        changed artifact; this says so before either runs."""
        return integrity.verify(self.store, self.get(name, version))

    # ---- aliases ---------------------------------------------------------------------------

    def promote(self, name: str, version: int | str, *, reason: str, by: str | None = None,
                run_id: str = "", details: dict | None = None, expect=ANY) -> ModelVersion:
        """champion <- version, previous <- the old champion; appended to the history (with the run, if any).

        `details` (e.g. the canary analysis' numbers) are kept in the history event. `expect`: the champion this
        move may replace (a version number, or None for none), as a deploy read it before its canary; another
        champion raises ChampionMoved and nothing moves (see `aliases.promotion`)."""
        reason = need_reason("promote", reason)
        extra = event_details(details)
        mv = self.get(name, version)
        integrity.refuse_changed_stored(self.store, mv, "make it champion")
        n = mv.version

        def event(was: int | None) -> dict:
            d = audit_record("promote", reason, version=n, from_version=was, **extra)
            return {**d, **({"by": by} if by else {}), **({"run_id": run_id} if run_id else {})}

        move = promotion(name, n, event, expect)

        def moving(state: dict) -> dict | None:
            self.replaced = state["champion"]
            return move(state)

        self._update(name, moving)
        return self.get(name, n)

    def rollback(self, name: str, *, reason: str = "rollback", by: str | None = None) -> ModelVersion:
        """champion <- previous; previous <- the champion before that (if any)."""
        reason = need_reason("rollback", reason)
        _check_name(name)
        if not self._generations(name):
            self._check_known(name)

        read: list = []  # the alias stack this rollback first read: it undoes that champion, no other

        def move(state: dict) -> dict | None:
            stack = state["stack"]
            self.replaced = state["champion"]
            if not read:
                read.append(stack)
            first = read[0]
            if stack != first:  # another move landed between our read and our write: was a second pop (two steps)
                if len(first) > 1 and state["champion"] == first[-2]:
                    return None  # the same rollback, done by another writer: nothing left to move
                raise moved_under(name, "rolling back", first[-1] if first else None, state)
            if len(stack) < 2:
                raise RegistryError(f"model `{name}` has no previous champion to roll back to")
            back = self._load(name, stack[-2], state)  # checked before the move, as promote checks its version
            if not back.ok:
                raise RegistryError(f"cannot roll back `{name}` to v{back.version}: {back.error}; the champion "
                                    f"stays v{stack[-1]}. Promote a sound version instead: kubepipe models promote "
                                    f"{name} VERSION --reason ...")
            integrity.refuse_changed_stored(self.store, back, f"roll back to it (the champion stays v{stack[-1]})")
            event = audit_record("rollback", reason, version=stack[-2], from_version=stack[-1])
            if by:
                event["by"] = by
            return {"stack": stack[:-1], "event": event}

        new = self._update(name, move)
        return self.get(name, new["champion"])

    def record_event(self, name: str, action: str, *, reason: str, version: int | str | None = None,
                     details: dict | None = None) -> dict:
        """Append a decision that moves no alias (a canary rolled back) to the history; the event."""
        _check_name(name)
        reason = need_reason(action, reason)
        n = self.get(name, version).version if version not in (None, "") else None
        event = audit_record(action, reason, version=n, **event_details(details))
        self._update(name, lambda state: {"stack": state["stack"], "event": event})
        return event

    def history(self, name: str) -> list[dict]:
        """Alias moves, oldest first: generation, champion, previous and the event (who/when/why)."""
        _check_name(name)
        gens = self._generations(name)
        if not gens:
            self._check_known(name)
        return read_history(self.store, name, gens)

    # ---- internals -------------------------------------------------------------------------

    def _numbers(self, name: str) -> list[int]:
        return sorted(n for n in map(version_number, self.store.listdir(f"{name}/versions")) if n is not None)

    def _taken(self, name: str) -> list[int]:
        """The numbers a new version must not take: those there, and those the aliases' stack names. A champion
        whose folder was removed (by hand, a lifecycle rule) freed its number, and the next registration became
        `champion` v1 without being promoted."""
        return sorted(set(self._numbers(name)) | set(self._state(name)["stack"]))

    def _load(self, name: str, n: int, state: dict) -> ModelVersion:
        return load_version(self.store, name, n, tuple(a for a in ALIASES if state.get(a) == n))

    def _resolve(self, name: str, version: int | str, state: dict) -> int:
        if isinstance(version, str) and version in ALIASES:
            n = state.get(version)
            if n is None:
                self._check_known(name)
                then = ("a second promotion sets it" if version == "previous" else
                        f"promote a version: kubepipe models promote {name} VERSION --reason ...")
                raise RegistryError(f"model `{name}` has no {version} yet; {then}")
            return n
        # `3` or `v3` only: int() also read '1_0' as 10, '٣' as 3 and lstrip('v') 'vv5' as 5 (promoted silently)
        n = None if isinstance(version, bool) else whole_number(str(version).strip().removeprefix("v"))
        if n is None:
            raise RegistryError(f"bad version {version!r}: give a number (e.g. 3) or an alias ({', '.join(ALIASES)})")
        return n

    def _check_known(self, name: str, numbers: list[int] | None = None) -> None:
        """A name with no versions at all is a typo or another registry, not a model without a champion."""
        if not (self._numbers(name) if numbers is None else numbers):
            if self.is_model_folder():
                raise RegistryError(f"no model `{name}` in {self.store.uri()}: {MODEL_FOLDER_HINT}")
            names = self.names()
            hint = did_you_mean(name, names)  # `frud`, `Fraud`: was the whole list to search by eye
            raise RegistryError(f"no model `{name}` in {self.store.uri()} (models: {', '.join(names) or 'none'}); "
                                f"{hint + ' ' if hint else ''}check the name and the registry ({self.store.source})")

    def is_model_folder(self) -> bool:
        """Whether the registry path is one model's folder (it holds versions/), not a registry: a common mistake."""
        return "versions" in self.store.listdir() and bool(self.store.listdir("versions"))

    def _generations(self, name: str) -> list[int]:
        return sorted(g for g in map(gen_number, self.store.listdir(f"{name}/aliases")) if g is not None)

    def _state(self, name: str) -> dict:
        """Newest alias state; `generation` is the newest number even if its file is unreadable."""
        return read_state(self.store, name, self._generations(name))

    def _update(self, name: str, move) -> dict:
        """Compare-and-swap the alias state: retry until our generation file wins."""
        return swap(self.store, name, lambda: self._state(name), move)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"bad model name {name!r}: {MODEL_NAME_RULE}")
