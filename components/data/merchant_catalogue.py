"""Seeded merchant catalogue and the noisy card descriptors that should retrieve its records.

The catalogue is what merchant enrichment looks descriptors up in: one canonical record per merchant
(id, name, statement aliases, category, MCC, city, country). Brands come from the merchant
generator's vocabulary (their statement spellings become aliases); local merchants are drawn from its
templates, one city each. Descriptors are drawn with the generator's own noise (`describe`: processor
prefixes, store numbers, truncation, typos, case), so a retriever meets what a categorizer meets.
"""

from __future__ import annotations

import functools
from typing import Any

from kubepipe.components.data.merchant_names import BRANDS, CITIES, NAMES, TEMPLATES
from kubepipe.components.data.merchants import describe

__all__ = ["MCC", "generate_catalogue", "generate_descriptors", "corrupt_catalogue", "catalogue_text"]

# A representative Merchant Category Code per category (ISO 18245).
MCC = {"groceries": 5411, "restaurants": 5812, "fuel": 5541, "travel": 4722, "digital": 5815, "pharmacy": 5912,
       "retail": 5311, "transport": 4121, "utilities": 4900, "entertainment": 7832}
_COUNTRIES = list(CITIES)


def catalogue_text(row: dict) -> str:
    """The text a merchant's record is retrieved by: name, aliases, category, place."""
    aliases = str(row.get("aliases") or "").replace("|", ", ")
    return (f"{row['name']} ({aliases}); {row['category']}, MCC {row['mcc']}; {row['city']}, {row['country']}"
            if aliases else f"{row['name']}; {row['category']}, MCC {row['mcc']}; {row['city']}, {row['country']}")


def generate_catalogue(n_local: int = 250, *, seed: int = 0):
    """A DataFrame: merchant_id, name, aliases ('|'-joined), category, mcc, city, country, local, text."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for category in sorted(BRANDS):
        for variants in BRANDS[category]:
            country = _COUNTRIES[int(rng.integers(len(_COUNTRIES)))]
            name = str(variants[0]).rstrip(" #*").title()
            rows.append({"name": name, "aliases": "|".join(variants), "category": category, "country": country,
                         "city": CITIES[country][int(rng.integers(len(CITIES[country])))], "local": False})
    seen = {r["name"] for r in rows}
    categories = sorted(TEMPLATES)
    most = _distinct_locals(seen)
    if n_local > most:  # the draw below would never finish
        raise ValueError(f"n_local={n_local}: the name templates give {most} distinct local merchants; ask for "
                         f"at most {most}")
    while sum(not r["local"] for r in rows) + n_local > len(rows):
        category = categories[int(rng.integers(len(categories)))]
        country = _COUNTRIES[int(rng.integers(len(_COUNTRIES)))]
        city = CITIES[country][int(rng.integers(len(CITIES[country])))]
        tpl = TEMPLATES[category][int(rng.integers(len(TEMPLATES[category])))]
        raw = tpl.format(n=NAMES[int(rng.integers(len(NAMES)))], c=city.rsplit(" ", 1)[0])
        if raw.title() in seen:
            continue
        seen.add(raw.title())
        rows.append({"name": raw.title(), "aliases": raw, "category": category, "country": country, "city": city,
                     "local": True})
    for i, r in enumerate(rows):
        r["merchant_id"] = f"m{i:04d}"
        r["mcc"] = MCC[r["category"]]
        r["text"] = catalogue_text(r)
    cols = ["merchant_id", "name", "aliases", "category", "mcc", "city", "country", "local", "text"]
    return pd.DataFrame(rows)[cols]


@functools.lru_cache(maxsize=1)
def _local_names() -> frozenset:
    """Every local merchant name the templates can make (computed once: ~0.1 s)."""
    return frozenset(tpl.format(n=n, c=city.rsplit(" ", 1)[0]).title()
                     for category in TEMPLATES for tpl in TEMPLATES[category] for n in NAMES
                     for cities in CITIES.values() for city in cities)


def _distinct_locals(taken: set) -> int:
    """How many distinct local merchant names the templates can make (brand names excluded)."""
    return len(_local_names() - taken)


def generate_descriptors(catalogue, n: int, *, seed: int = 1, id_prefix: str = "q"):
    """A DataFrame: query_id, descriptor, merchant_id: noisy statement lines of catalogue merchants."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    records = catalogue.to_dict("records")
    out = []
    for i in range(n):
        r = records[int(rng.integers(len(records)))]
        aliases = str(r["aliases"]).split("|")
        name = aliases[int(rng.integers(len(aliases)))]
        text = describe(rng, r["category"], r["country"], name=name, local=bool(r["local"]), city=r["city"])
        out.append({"query_id": f"{id_prefix}{seed:02d}-{i:05d}", "descriptor": text, "merchant_id": r["merchant_id"]})
    return pd.DataFrame(out)


def corrupt_catalogue(catalogue, *, fraction: float = 0.6, seed: int = 7):
    """The catalogue with `fraction` of its texts moved to other merchants' ids (a broken upstream join)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bad = catalogue.copy()
    rows = rng.choice(len(bad), size=int(len(bad) * fraction), replace=False)
    bad.loc[bad.index[rows], "text"] = bad["text"].to_numpy()[rng.permutation(rows)]
    return bad
