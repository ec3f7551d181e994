"""URIs and local paths: which a value is, of which scheme (in any case: RFC 3986 schemes are case-insensitive),
and how to open it. `kubepipe.util` re-exports these."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["FILE_SCHEME", "is_file_uri", "local_path", "url_to_fs", "uri_scheme", "normal_uri", "one_slash_uri",
           "ONE_SLASH_SAYS", "store_fs", "is_local_fs", "write_whole", "MINIO_ENDPOINT"]

MINIO_ENDPOINT = "http://minio-service.kubeflow:9000"  # KFP's in-cluster MinIO, unless AWS_ENDPOINT_URL says another

FILE_SCHEME = "file://"
# RFC 3986's scheme, then an authority; one letter is a drive (C://x), as spec.paths reads it
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def uri_scheme(text: object) -> str | None:
    """The scheme of a URI in lower case (`GS://bucket/x` -> `gs`: RFC 3986 schemes are case-insensitive), or None for
    a plain path (a drive's `C://x` too). The one rule for "is this a URI, and of which scheme"."""
    m = _URI_SCHEME.match(text) if isinstance(text, str) else None
    return m.group(0)[:-3].lower() if m else None


# What is said of such a value (`one_slash_uri`), after what it is: a YAML value, a param default, a --param value.
ONE_SLASH_SAYS = "is neither a URI (a scheme is followed by `//`) nor a path: no step would find it"
_ONE_SLASH = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")


def one_slash_uri(text: object) -> str | None:
    """The URI `text` was meant to be when its scheme is followed by one `/` (`gs:/bucket/d.csv` is
    `gs://bucket/d.csv`, `file:/abs/x.csv` `file:///abs/x.csv`), else None. Such a value is neither a URI (`uri_scheme`)
    nor a path: it was read as the relative path `gs:/bucket/d.csv`, which no step finds."""
    m = _ONE_SLASH.match(text) if isinstance(text, str) else None
    if m is None:
        return None
    rest = m.string[m.end():]
    return f"{m.group(1)}:///{rest}" if m.group(1).lower() == "file" else f"{m.group(1)}://{rest}"


def normal_uri(text: str) -> str:
    """`text` with its URI scheme in lower case (`S3://b/k` -> `s3://b/k`): fsspec's protocols and Google's clients
    (`gs://` only) are case-sensitive. A plain path is returned as it is."""
    scheme = uri_scheme(text)
    return scheme + text[len(scheme):] if scheme else text


def is_file_uri(text: object) -> bool:
    """`text` is a `file://` URI, its scheme in any case: RFC 3986 schemes are case-insensitive (`FILE:///x`)."""
    return isinstance(text, str) and text[:len(FILE_SCHEME)].lower() == FILE_SCHEME


def local_path(uri: object) -> str | None:
    """The path on this machine that `uri` names, or None for a URI of any other scheme (gs://, s3://, https://).

    The one rule for `file://` URIs and plain paths: a `file://` URI, its scheme in any case, loses the scheme
    (`FILE:///abs/x.csv` is `/abs/x.csv`; `file://data.csv` is the relative `data.csv`; RFC 8089's
    `file://localhost/abs/x.csv` is `/abs/x.csv`); a plain path is itself."""
    text = str(uri)
    if is_file_uri(text):
        rest = text[len(FILE_SCHEME):]
        return rest[len("localhost"):] if rest[:len("localhost/")].lower() == "localhost/" else rest
    return None if _URI_SCHEME.match(text) else text


def url_to_fs(uri: str, **options: Any) -> tuple[Any, str]:
    """fsspec's (filesystem, path) for `uri`, a `file://` URI (its scheme in any case) or a plain path read as
    `local_path` reads it, any other URI by its scheme in lower case: fsspec's protocols are case-sensitive
    (`FILE:///x`, `GS://b/x` were 'Protocol not known: FILE', 'GS')."""
    import fsspec

    return fsspec.core.url_to_fs(local_path(uri) or normal_uri(uri), **options)


def store_fs(uri: str, **options: Any) -> tuple[Any, str]:
    """`url_to_fs`, where `minio://` (KFP's name for its MinIO store) is S3 at `AWS_ENDPOINT_URL` (default: the
    in-cluster MinIO); `options` go to the filesystem (a client's timeouts and retries)."""
    import os

    scheme = uri_scheme(uri)
    if scheme != "minio":
        return url_to_fs(uri, **options) if options else url_to_fs(uri)
    import fsspec

    kwargs = {**options, "client_kwargs": {**options.get("client_kwargs", {}),
                                           "endpoint_url": os.environ.get("AWS_ENDPOINT_URL", MINIO_ENDPOINT)}}
    return fsspec.filesystem("s3", **kwargs), normal_uri(uri)[len("minio://"):]


def is_local_fs(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def write_whole(fs: Any, path: str, text: str) -> None:
    """Readers see the old file or the new one, never a part: local files atomically, objects in one PUT."""
    if is_local_fs(fs):
        from kubepipe.util import atomic_write_text

        atomic_write_text(path, text)
    else:
        fs.pipe_file(path, text.encode("utf-8"))
