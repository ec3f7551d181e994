"""Container entry for Vertex: copy the model from its URI, then exec the server.

    python -m kubepipe.components.deploy.fetch SRC DEST -- kubepipe serve DEST --name N ...

Vertex hands the container `AIP_STORAGE_URI` (a gs:// copy of the artifact)
but mounts nothing, while `kubepipe serve` reads a local directory. SRC may be
a local directory (used as is) or any fsspec URI (gs:// needs gcsfs in the image).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

__all__ = ["fetch", "main"]


def fetch(src: str, dest: str) -> str:
    """A local directory holding the model at `src`; downloads into `dest` unless `src` is local."""
    if os.path.isdir(src):
        return src
    from kubepipe.util import url_to_fs

    try:
        fs, path = url_to_fs(src)
        if fs.isfile(path):  # was 'cannot copy the model ...: Is a directory; check ... may read it'
            raise SystemExit(f"fetch: {src} is a file, not a folder: a model is the folder a train step writes "
                             "(kubepipe-model.json beside its weights); give that folder's URI (Vertex's "
                             "AIP_STORAGE_URI: the deploy step's model artifact)")
        Path(dest).mkdir(parents=True, exist_ok=True)
        fs.get(path.rstrip("/") + "/", dest.rstrip("/") + "/", recursive=True)
    except (ImportError, ValueError) as exc:  # no filesystem for the scheme (gcsfs / s3fs missing)
        raise SystemExit(f"fetch: cannot read {src}: {exc}; install the fsspec backend for it in the image") from None
    except FileNotFoundError:  # a raw traceback in the container log
        raise SystemExit(f"fetch: no model at {src} (nothing there); check the model's artifact URI (Vertex's "
                         "AIP_STORAGE_URI: the deploy step's model artifact), and that it was not deleted") from None
    except OSError as exc:  # denied, unreachable
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # was 'check that the serving container's service account ...'
            raise SystemExit(f"fetch: copying the model from {src} into {dest} failed: {exc.strerror or exc}: the "
                             "serving container's disk is full; give the deployment a machine type with room for "
                             "the model (serving.machine_type)") from None
        raise SystemExit(f"fetch: cannot copy the model from {src}: {exc.strerror or exc}; check that the serving "
                         "container's service account may read it") from None
    return dest


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args or args.index("--") != 2:
        raise SystemExit("usage: python -m kubepipe.components.deploy.fetch SRC DEST -- COMMAND ARGS...")
    src, dest, cmd = args[0], args[1], args[3:]
    local = fetch(src, dest)
    cmd = [local if a == dest else a for a in cmd]  # a local SRC is served in place
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
