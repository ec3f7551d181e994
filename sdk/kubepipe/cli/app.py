"""Placeholder: the real CLI lands with the core."""


def main() -> None:  # pragma: no cover
    raise SystemExit("kubepipe CLI is being built")
