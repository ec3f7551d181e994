"""Report artifacts written as files a browser opens: `<artifact>.html` (or `.md`), never a bare name.

KFP gives an output artifact a path without an extension, so a browser shows an HTML report
as source. A component may change an output artifact's URI: kfp.local, the KFP launcher and
Vertex all record the URI the component's executor output names (the KFP launcher's
`mergeRuntimeArtifacts` takes it), and `Artifact.path` follows the URI. So the report's URI
gets the suffix before it is written; the KFP UI still renders it (it reads the URI's content).
"""

from __future__ import annotations

from kubepipe.util import atomic_write_text

__all__ = ["report_path", "write_report"]


def report_path(artifact, suffix: str = ".html") -> str:
    """The artifact's file path ending in `suffix`; its URI (or path) is updated to match."""
    uri = getattr(artifact, "uri", None)
    if isinstance(uri, str) and uri:
        if not uri.endswith(suffix):
            artifact.uri = uri + suffix
        return artifact.path
    path = str(artifact.path)
    if not path.endswith(suffix):
        artifact.path = path = path + suffix
    return path


def write_report(artifact, text: str, suffix: str = ".html") -> str:
    """Write the report atomically at `report_path(artifact, suffix)`; returns that path."""
    path = report_path(artifact, suffix)
    atomic_write_text(path, text)
    return path
