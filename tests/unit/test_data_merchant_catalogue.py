"""The seeded merchant catalogue: distinct names, and a clear error instead of an endless draw."""

from __future__ import annotations

import pytest

from kubepipe.components.data.merchant_catalogue import _distinct_locals, generate_catalogue


def test_catalogue_names_are_distinct_and_locals_counted():
    cat = generate_catalogue(300, seed=3)
    assert cat["name"].is_unique and cat["merchant_id"].is_unique
    assert int(cat["local"].sum()) == 300


def test_asking_for_more_locals_than_the_templates_make_is_an_error_not_a_hang():
    most = _distinct_locals(set(generate_catalogue(0)["name"]))
    assert 1000 < most < 100_000
    with pytest.raises(ValueError, match=f"n_local={most + 1}: .* give {most} distinct local merchants"):
        generate_catalogue(most + 1)
