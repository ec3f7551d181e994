"""A local run leaves `builtins.print` as it found it. kfp.local indents a task's prints by swapping builtins.print
(logging_utils.indented_print) and putting back what it found; its worker threads of parallel steps overlap, so the
one that ended last could put back the other's indenting print: every later print of the process (a notebook's,
a test's) came out four spaces in (a clean-clone CI's captured table did)."""

from __future__ import annotations

import builtins

from kfp.local import logging_utils

from kubepipe.backends.local.process_state import process_kept


def test_overlapping_indented_prints_of_parallel_tasks_leave_print_as_it_was(capsys):
    original = builtins.print
    try:
        with process_kept():
            first, second = logging_utils.indented_print(), logging_utils.indented_print()
            first.__enter__()   # task A starts
            second.__enter__()  # task B starts: it keeps A's indenting print as the one to put back
            first.__exit__(None, None, None)   # A ends first
            second.__exit__(None, None, None)  # B ends: puts back A's
        print("kubepipe   32   361/s")
        assert builtins.print is original
        assert capsys.readouterr().out == "kubepipe   32   361/s\n"
    finally:
        builtins.print = original
