"""Model registry: versions with metrics, lineage and model cards; `champion` / `previous` aliases.

`Registry(uri)` works on a local folder (`file://...`, the default `file://.kubepipe/registry`)
or any fsspec URI (`gs://...` through gcsfs). See `registry.py` for the layout and the
concurrency rules (`listing.py` the reads, `moves.py` the alias moves on `aliases.py`'s compare-and-swap,
`store.py` / `fsspec_store.py` the stores, `gc.py` and
`integrity.py` the clean-up and file checks), `vertex.py` for the optional Vertex AI Model Registry mirror
and `open.py` for `open_registry(uri, profile)`, the one factory every promotion goes through.
"""

from kubepipe.components.registry.open import open_registry, step_registry
from kubepipe.components.registry.registry import DEFAULT_URI, Registry
from kubepipe.components.registry.version import ChampionMoved, ModelVersion, RegistryError, audit_record, current_user

__all__ = ["Registry", "ModelVersion", "RegistryError", "ChampionMoved", "DEFAULT_URI", "audit_record", "current_user",
           "open_registry", "step_registry"]
