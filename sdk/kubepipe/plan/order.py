"""Ordering of steps: cycles named with their members; a topological order that keeps
steps with the same condition next to each other (one dsl.If block each)."""

from __future__ import annotations

__all__ = ["find_cycle", "topo_order"]


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in deps.get(n, []):
            if d not in deps:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in deps:
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def topo_order(names: list[str], deps: dict[str, list[str]], group: dict[str, object]) -> list[str]:
    """Kahn's algorithm; ties go to the current group, then to YAML order."""
    index = {n: i for i, n in enumerate(names)}
    remaining = {n: {d for d in deps.get(n, []) if d in index} for n in names}
    done: list[str] = []
    last = object()
    while remaining:
        ready = [n for n, ds in remaining.items() if not ds]
        ready.sort(key=lambda n: (group.get(n) != last, index[n]))
        n = ready[0]
        done.append(n)
        last = group.get(n)
        del remaining[n]
        for ds in remaining.values():
            ds.discard(n)
    return done
