"""`python -m kubepipe`: the `kubepipe` command (where its script is not on PATH)."""

from kubepipe.cli.app import main

main()
