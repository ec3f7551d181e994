"""The alias moves of a `Registry`: promote, rollback and a recorded decision that moves nothing, each a
compare-and-swap of the alias state (`aliases.swap`); see `registry.py` for the rules."""

from __future__ import annotations

from kubepipe.components.registry import integrity
from kubepipe.components.registry.aliases import ANY, event_details, moved_under, promotion, swap
from kubepipe.components.registry.listing import RegistryListing, check_name
from kubepipe.components.registry.version import ModelVersion, RegistryError, audit_record, need_reason

__all__ = ["AliasMoves"]


class AliasMoves(RegistryListing):
    """`Registry`'s alias moves; `replaced` is the champion the last move through this object replaced."""

    replaced: int | None

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
        check_name(name)
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
        check_name(name)
        reason = need_reason(action, reason)
        n = self.get(name, version).version if version not in (None, "") else None
        event = audit_record(action, reason, version=n, **event_details(details))
        self._update(name, lambda state: {"stack": state["stack"], "event": event})
        return event

    def _update(self, name: str, move) -> dict:
        """Compare-and-swap the alias state: retry until our generation file wins."""
        return swap(self.store, name, lambda: self._state(name), move)
