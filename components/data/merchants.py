"""Seeded generator of the flagship dataset: card transaction descriptions -> merchant category.

Descriptions carry what real statements carry: processor prefixes (`SQ *`, `TST*`, `PAYPAL *`),
store numbers, cities, abbreviations, truncation at the descriptor width, typos and case noise.
A few labels are flipped, and some brands are ambiguous (UBER *EATS vs UBER *TRIP), so a model
must generalise from words rather than memorise strings.
"""

from __future__ import annotations

from kubepipe.components.data.merchant_names import (
    AMOUNT, BRANDS, CATEGORIES, CITIES, HOURS, LEGAL, NAMES, NEW_BRANDS, PREFIXES, TEMPLATES,
)

__all__ = ["CATEGORIES", "DEFAULT_MIX", "generate_merchants", "describe"]

DEFAULT_MIX = {"groceries": 0.15, "restaurants": 0.17, "fuel": 0.08, "travel": 0.07, "digital": 0.1, "pharmacy": 0.07,
               "retail": 0.13, "transport": 0.1, "utilities": 0.06, "entertainment": 0.07}
_COUNTRY_P = {"US": 0.4, "GB": 0.15, "SE": 0.2, "DE": 0.15, "FR": 0.1}
_ONLINE = {"digital", "utilities"}
_KEYS = "QWERTYUIOPASDFGHJKLZXCVBNM"


def _typo(rng, text: str) -> str:
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text
    i = letters[int(rng.integers(len(letters)))]
    op = int(rng.integers(4))
    if op == 0:
        return text[:i] + text[i + 1:]
    if op == 1 and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if op == 2:
        return text[:i] + text[i] + text[i:]
    k = _KEYS.find(text[i].upper())
    near = _KEYS[max(0, k - 1)] if k > 0 else "E"
    return text[:i] + near + text[i + 1:]


def describe(rng, category: str, country: str, *, new_merchants: float = 0.0, name: str | None = None,
             local: bool | None = None, city: str | None = None) -> str:
    """One noisy statement descriptor for a merchant of `category`; `name` (with `local`, `city`) fixes the
    merchant (the catalogue's descriptors), else one is drawn."""
    drawn_city = CITIES[country][int(rng.integers(len(CITIES[country])))]
    city = city or drawn_city
    drawn_local = rng.random() < 0.4
    local = drawn_local if local is None else local
    if name is not None:
        pass
    elif not local and category in NEW_BRANDS and rng.random() < new_merchants:
        pool = NEW_BRANDS[category]
        name = rng.choice(pool[int(rng.integers(len(pool)))])
    elif local and rng.random() < 0.2:  # just a legal name: nothing in the words says what is sold
        name = f"{NAMES[int(rng.integers(len(NAMES)))]} {rng.choice(LEGAL)}"
    elif local:
        tpl = TEMPLATES[category][int(rng.integers(len(TEMPLATES[category])))]
        name = tpl.format(n=NAMES[int(rng.integers(len(NAMES)))], c=city.rsplit(" ", 1)[0])
    else:
        variants = BRANDS[category][int(rng.integers(len(BRANDS[category])))]
        name = str(variants[int(rng.integers(len(variants)))])
    prefix = ""
    if local and rng.random() < 0.4:
        prefix = rng.choice(PREFIXES["local"])
    elif rng.random() < 0.08:
        prefix = rng.choice(PREFIXES["any"])
    head = prefix + name
    if category in _ONLINE:
        r = rng.random()
        if r < 0.35:
            head += f" {int(rng.integers(200, 999))}-{int(rng.integers(100, 999))}-{int(rng.integers(1000, 9999))}"
        elif r < 0.6:
            head += " *" + "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"), 8))
    elif rng.random() < 0.45:
        n = int(rng.integers(1, 99999))
        head = head.rstrip("#") + rng.choice([f" #{n}", f" {n:05d}", f" STORE {n % 1000}", f"#{n % 10000}"])
    if rng.random() < 0.3:  # the descriptor field is 22-25 characters wide on many networks
        head = head[: int(rng.integers(22, 26))].rstrip()
    tail = city if (category not in _ONLINE and rng.random() < 0.7) else (country if rng.random() < 0.5 else "")
    text = f"{head} {tail}".strip() if tail else head
    if rng.random() < 0.12:
        text = _typo(rng, text)
    r = rng.random()
    if r < 0.1:
        text = text.title()
    elif r < 0.18:
        text = text.lower()
    if rng.random() < 0.1:
        text = text.replace(" ", "  ", 1)
    return text


def generate_merchants(n: int, *, seed: int = 0, start: str = "2026-03-02", days: int = 7, mix: dict | None = None,
                       new_merchants: float = 0.0, label_noise: float = 0.02, amount_scale: float = 1.0,
                       id_prefix: str = "t"):
    """A DataFrame: transaction_id, timestamp (ISO UTC), description, amount, country, hour, category."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    mix = mix or DEFAULT_MIX
    cats = list(mix)
    p = np.array([mix[c] for c in cats], dtype=float)
    categories = rng.choice(cats, size=n, p=p / p.sum())
    countries = rng.choice(list(_COUNTRY_P), size=n, p=list(_COUNTRY_P.values()))
    t0 = pd.Timestamp(start, tz="UTC")
    rows = []
    for i, (cat, country) in enumerate(zip(categories, countries)):
        median, sigma = AMOUNT[cat]
        mu, sd = HOURS[cat]
        hour = int(np.clip(round(rng.normal(mu, sd)), 0, 23)) if rng.random() < 0.9 else int(rng.integers(24))
        day = int(rng.integers(days))
        ts = t0 + pd.Timedelta(days=day, hours=hour, minutes=int(rng.integers(60)), seconds=int(rng.integers(60)))
        label = cat if rng.random() >= label_noise else str(rng.choice([c for c in CATEGORIES if c != cat]))
        rows.append({
            "transaction_id": f"{id_prefix}{seed:02d}-{i:06d}",
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "description": describe(rng, str(cat), str(country), new_merchants=new_merchants),
            "amount": round(float(rng.lognormal(np.log(median * amount_scale), sigma)), 2),
            "country": str(country),
            "hour": hour,
            "category": label,
        })
    return pd.DataFrame(rows).sort_values("timestamp", kind="stable").reset_index(drop=True)
