"""`champion:<model>` sources: the training data of the registry's current champion.

The training step records its dataset's URI in the model's metadata.json; a drift monitor
then compares recent data with exactly what the serving model learned from.
"""

from __future__ import annotations

import json
from pathlib import Path

from kubepipe.components.errors import DataError

__all__ = ["CHAMPION_PREFIX", "is_champion_source", "champion_training_data"]

CHAMPION_PREFIX = "champion:"


def is_champion_source(source: str) -> bool:
    return str(source).strip().startswith(CHAMPION_PREFIX)


def champion_training_data(source: str, registry_uri: str) -> str:
    """The URI of the champion's training Dataset (a Parquet artifact)."""
    from kubepipe.components.registry import RegistryError, step_registry

    name = str(source).strip()[len(CHAMPION_PREFIX):].strip()
    if not name:
        raise DataError(f"{source}: write champion:<model name>, e.g. champion:merchant-categorizer")
    where = registry_uri or "file://.kubepipe/registry"
    try:
        registry = step_registry(where)
        champ = registry.alias(name, "champion")
        if champ is None:
            raise DataError(f"{source}: model `{name}` has no champion in {where} yet; "
                            "deploy one first, or give the reference data's URI")
        with registry.model_files(name, champ.version) as folder:
            try:
                meta = json.loads((Path(folder) / "metadata.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DataError(f"{source}: cannot read champion v{champ.version}'s metadata.json: {exc}") from None
    except RegistryError as exc:
        raise DataError(f"{source}: {exc}") from None
    uri = (meta.get("training_data") or {}).get("uri")
    if not uri:
        raise DataError(f"{source}: champion v{champ.version} does not record its training data "
                        "(trained before kubepipe recorded it); give the reference data's URI")
    return uri
