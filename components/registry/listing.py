"""Reading a registry: its model names, a model's versions, an alias or version number resolved to one, the
promotion history and a version's files (see `registry.py` for the layout). `RegistryListing` is the read half of
`Registry`; `moves.py` adds the alias moves and `registry.py` registration and clean-up."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from kubepipe.components.checks import MODEL_NAME, MODEL_NAME_RULE
from kubepipe.components.registry import integrity
from kubepipe.components.registry.aliases import read_history, read_state
from kubepipe.components.registry.files import gen_number, version_number
from kubepipe.components.registry.fsspec_store import FsspecStore
from kubepipe.components.registry.store import LocalStore
from kubepipe.components.registry.version import ALIASES, ModelVersion, RegistryError, load_version
from kubepipe.util import did_you_mean, whole_number

__all__ = ["RegistryListing", "model_folder_hint", "check_name"]

_NAME = MODEL_NAME


def model_folder_hint(source: str) -> str:
    """What to do when the registry path is one model's folder; `source`, where that path was given (was always
    '--registry', for a path the profile's registry_uri gave)."""
    return f"this folder is one model's (it holds versions/): give its parent as {source}"


def check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"bad model name {name!r}: {MODEL_NAME_RULE}")


class RegistryListing:
    """The reads of a `Registry` over its `store`."""

    store: LocalStore | FsspecStore

    def names(self) -> list[str]:
        """Model names held in the registry."""
        return [d for d in self.store.listdir() if _NAME.match(d) and self.store.listdir(f"{d}/versions")]

    def versions(self, name: str, *, known: bool = False) -> list[ModelVersion]:
        """Every version, oldest first; corrupt or unfinished ones are listed with their status.

        `known`: a name without versions raises (a typo or another registry) instead of returning []."""
        check_name(name)
        numbers = self._numbers(name)
        if known:
            self._check_known(name, numbers)
        state = self._state(name)
        return [self._load(name, n, state) for n in numbers]

    def get(self, name: str, version: int | str) -> ModelVersion:
        """One version (a number, or an alias name); raises RegistryError if missing or corrupt."""
        check_name(name)
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
        check_name(name)
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias `{alias}`; aliases are: {', '.join(ALIASES)}")
        n = self._state(name).get(alias)
        return None if n is None else self.get(name, n)

    def aliases(self, name: str) -> dict:
        """{"champion": n, "previous": n} as the newest alias state says (None: unset), without loading the versions:
        reporting what a move replaces must not need the old champion's files (they may be gone)."""
        check_name(name)
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

    def history(self, name: str) -> list[dict]:
        """Alias moves, oldest first: generation, champion, previous and the event (who/when/why)."""
        check_name(name)
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
        if n is None or n < 1:  # `-- -1`, `0`: the rule named (was 'bad version' / 'no version 0' alone)
            rule = "versions are numbered from 1 (the first registered is v1); " if _below_one(version) else ""
            raise RegistryError(f"bad version {version!r}: {rule}give a number (e.g. 3) or an alias "
                                f"({', '.join(ALIASES)})")
        return n

    def _check_known(self, name: str, numbers: list[int] | None = None) -> None:
        """A name with no versions at all is a typo or another registry, not a model without a champion."""
        if not (self._numbers(name) if numbers is None else numbers):
            if self.is_model_folder():
                raise RegistryError(f"no model `{name}` in {self.store.uri()}: {model_folder_hint(self.store.source)}")
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


def _below_one(version) -> bool:
    """`-1`, `0`, `v0`, `-0`: a whole number below 1, as typed."""
    return not isinstance(version, bool) and bool(re.fullmatch(r"v?(-\d+|[-+]?0+)", str(version).strip()))
