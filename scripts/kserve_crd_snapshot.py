"""Write the InferenceService schema snapshot that ships with kubepipe (offline `kubepipe kserve validate`).

    python scripts/kserve_crd_snapshot.py CRD.yaml --source "kserve/kserve@<commit> config/crd/full"

It keeps only the v1beta1 openAPIV3Schema, as minified, key-sorted JSON, gzipped without a
timestamp, so the same CRD always gives the same bytes (`make crd-snapshot`; a test checks it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "components" / "deploy" / "inferenceservice.schema.json.gz"


def snapshot_bytes(crd_file: Path, source: str) -> bytes:
    from kubepipe.components.deploy.crd import crd_schema

    crd = yaml.load(crd_file.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    doc = {"source": source, "schema": crd_schema(crd, str(crd_file))}
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("crd", type=Path, help="serving.kserve.io_inferenceservices.yaml")
    ap.add_argument("--source", required=True, help="where the CRD came from (KServe version or commit)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    data = snapshot_bytes(args.crd, args.source)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, args.out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {args.out} ({len(data)} bytes) from {args.crd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
