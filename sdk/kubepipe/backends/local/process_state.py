"""What a local run changes in the process that calls it, put back when the run ends: a notebook, a scheduler or a
script running several pipelines goes on as before the run."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

__all__ = ["process_kept"]


@contextlib.contextmanager
def process_kept() -> Iterator[None]:
    """The root logger's handlers and level as they were. kfp.local logs with `logging.info` outside its own
    logger context, so the root logger got a basicConfig handler writing into the run's log tee: the caller's
    own `logging.basicConfig(...)` was then a no-op, and its records went to a finished run's stream.
    And kfp.local's one global config (`local.init`) as it was: the caller's own kfp.local tasks ran with the
    run's, into its artifacts folder and with raise_on_error off, a failed task not raising."""
    from kfp.local import config

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    local_config = config.LocalExecutionConfig.instance
    try:
        yield
    finally:
        config.LocalExecutionConfig.instance = local_config
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
