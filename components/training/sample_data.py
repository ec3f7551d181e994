"""Synthetic card-transaction descriptions with categories, for examples, tests and benchmarks.

Merchant names are mixed with the noise real statements carry (processor
prefixes, store numbers, city/state, reference codes), and a few labels are
flipped, so a model must generalise rather than look names up.
"""

from __future__ import annotations

__all__ = ["MERCHANTS", "merchant_frame"]

MERCHANTS = {
    "groceries": ["WHOLEFDS MKT", "TRADER JOE S", "SAFEWAY", "KROGER", "ALDI", "COSTCO WHSE", "PUBLIX", "LIDL",
                  "SPROUTS FARMERS", "WEGMANS", "H-E-B", "FOOD LION"],
    "dining": ["STARBUCKS", "MCDONALD'S", "CHIPOTLE", "BLUE BOTTLE COFFEE", "SWEETGREEN", "PANERA BREAD",
               "DOMINO'S", "TACO BELL", "SHAKE SHACK", "DUNKIN", "PIZZA HUT", "SUBWAY"],
    "travel": ["UNITED AIRLINES", "DELTA AIR", "MARRIOTT", "HILTON HOTELS", "AIRBNB", "EXPEDIA", "SOUTHWEST AIR",
               "HERTZ RENT A CAR", "BOOKING.COM", "AMERICAN AIR", "HYATT", "JETBLUE"],
    "transport": ["UBER TRIP", "LYFT RIDE", "SHELL OIL", "CHEVRON", "BART CLIPPER", "EXXONMOBIL", "MTA NYCT",
                  "BP GAS", "PARKWHIZ", "SPOTHERO", "CITGO", "AMTRAK"],
    "shopping": ["AMZN MKTP", "TARGET", "WALMART.COM", "BEST BUY", "IKEA", "ETSY", "HOME DEPOT", "MACY'S",
                 "NORDSTROM", "EBAY", "APPLE.COM BILL", "ZARA"],
    "utilities": ["PG&E", "COMCAST XFINITY", "VERIZON WIRELESS", "AT&T BILL", "T-MOBILE", "CON ED",
                  "SPECTRUM", "DUKE ENERGY", "WATER DEPT", "NATIONAL GRID", "SOCALGAS", "GOOGLE FI"],
    "entertainment": ["NETFLIX.COM", "SPOTIFY", "HULU", "AMC THEATRES", "STEAM GAMES", "TICKETMASTER",
                      "DISNEY PLUS", "HBO MAX", "REGAL CINEMAS", "PLAYSTATION NETWORK", "AUDIBLE", "YOUTUBE PREMIUM"],
    "health": ["CVS PHARMACY", "WALGREENS", "RITE AID", "KAISER PERM", "QUEST DIAGNOSTICS", "LABCORP",
               "ONE MEDICAL", "GNC", "PLANET FITNESS", "EQUINOX", "24 HOUR FITNESS", "ZOCDOC"],
}
_PREFIX = ["", "", "", "SQ *", "TST* ", "POS ", "PAYPAL *", "CHECKCARD ", "DEBIT PURCHASE "]
_CITY = ["SAN FRANCISCO CA", "NEW YORK NY", "SEATTLE WA", "AUSTIN TX", "CHICAGO IL", "OAKLAND CA", "BOSTON MA",
         "DENVER CO", "MIAMI FL", "PORTLAND OR", ""]


def merchant_frame(n: int = 2000, seed: int = 0, label_noise: float = 0.02):
    """A DataFrame with `description` and `category` columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cats = sorted(MERCHANTS)
    rows = []
    alphabet = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
    for _ in range(n):
        cat = cats[rng.integers(len(cats))]
        name = MERCHANTS[cat][rng.integers(len(MERCHANTS[cat]))]
        if rng.random() < 0.15:  # statements truncate long names
            name = name[: max(4, len(name) - int(rng.integers(1, 5)))]
        parts = [_PREFIX[rng.integers(len(_PREFIX))] + name]
        if rng.random() < 0.5:
            parts.append(f"#{rng.integers(1, 99999)}")
        if rng.random() < 0.3:
            parts.append("*" + "".join(rng.choice(alphabet, 6)))
        parts.append(_CITY[rng.integers(len(_CITY))])
        text = " ".join(p for p in parts if p)
        if rng.random() < 0.3:
            text = text.lower() if rng.random() < 0.5 else text.title()
        if rng.random() < label_noise:
            cat = cats[rng.integers(len(cats))]
        rows.append((text, cat))
    return pd.DataFrame(rows, columns=["description", "category"])
