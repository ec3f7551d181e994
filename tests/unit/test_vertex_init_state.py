"""aiplatform's process-wide configuration across profiles in one process (kubepipe.clients.vertex_init)."""

from __future__ import annotations

import pytest

from kubepipe.clients import vertex_init


@pytest.fixture
def config(monkeypatch):
    initializer = pytest.importorskip("google.cloud.aiplatform.initializer")
    cfg = initializer.global_config
    for attr in list(vars(cfg)):  # each test's settings go with it
        monkeypatch.setattr(cfg, attr, getattr(cfg, attr))
    monkeypatch.setattr("kubepipe.clients._VERTEX_SET", {}, raising=False)
    return cfg


def test_an_earlier_profile_s_endpoint_and_credentials_do_not_stay_for_the_next(config):
    """aiplatform.init never unsets: a notebook submitting with a profile that has api_endpoint (and a
    service account's credentials), then with one that has neither, sent the second's calls to the first's
    endpoint as the first's identity."""
    from google.auth.credentials import AnonymousCredentials

    mine = object()
    config._credentials = mine  # the caller's own aiplatform.init(credentials=...)
    first = AnonymousCredentials()
    vertex_init({"project": "proj-a", "region": "europe-west4", "api_endpoint": "http://127.0.0.1:9"},
                credentials=first)
    assert (config.project, config._api_endpoint, config._credentials) == ("proj-a", "http://127.0.0.1:9", first)
    vertex_init({"project": "proj-b", "region": "us-central1"})
    assert (config.project, config.location) == ("proj-b", "us-central1")
    assert config._api_endpoint is None and config._api_transport is None
    assert config._credentials is mine  # as the caller had it, not the first profile's
    vertex_init({"project": "proj-b", "region": "us-central1"})  # again: nothing else moves
    assert config._credentials is mine and config._api_endpoint is None
