"""Who holds a deploy's lease on an InferenceService or a Vertex endpoint (decision 0021)."""

from __future__ import annotations

import uuid

__all__ = ["lease_holder"]


def lease_holder(run_id) -> str:
    """The run id; for a call given none (a library call), an id of its own: an empty id was one holder shared by
    every such call, so they were not kept apart. A retry of such a call is another holder too."""
    return str(run_id or "") or f"call-{uuid.uuid4().hex[:12]}"
