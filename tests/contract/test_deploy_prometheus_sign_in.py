"""Prometheus behind a sign-in proxy (OAuth2 Proxy, IAP): the real httpx client against a loopback proxy that
answers every API call with 302 to its sign-in page, as those proxies do for a client without a session."""

from __future__ import annotations

import httpx
import pytest

from loopback import JsonHandler, LoopbackServer
from kubepipe.components.deploy.prometheus import PrometheusError, revision_stats

pytestmark = pytest.mark.contract
SECRET = "s3cr3t-state-Zq9"


class SignInProxy(LoopbackServer):
    def __init__(self, location: str):
        self.location = location

    def dispatch(self, h: JsonHandler) -> None:
        if h.path.startswith("/oauth2/sign_in"):
            page = b"<html><body>Sign in with Google</body></html>"
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(page)))
            h.end_headers()
            h.wfile.write(page)
            return
        h.send_response(302)
        h.send_header("Location", self.location)
        h.send_header("Content-Length", "0")
        h.end_headers()


def _error(proxy: SignInProxy, client=None) -> str:
    with pytest.raises(PrometheusError) as err:
        revision_stats(proxy.url, namespace="ns", revision="r-00002", window_s=60, client=client)
    assert not err.value.retryable  # signing in is not something a retry does
    return str(err.value)


def test_a_redirect_to_a_sign_in_page_says_so_where_to_and_what_to_configure():
    """The 302's empty body gave `answered 302: ` and nothing else: no redirect, no proxy, nothing to do."""
    location = (f"https://auth.example.com:8443/oauth2/start?client_id=prom&state={SECRET}"
                f"&rd=%2Fapi%2Fv1%2Fquery#frag")
    with SignInProxy(location) as proxy:
        msg = _error(proxy)
    assert msg.startswith(f"prometheus_url {proxy.url}: query 'sum(increase(revision_app_request_count{{")
    assert "was redirected (302 to https://auth.example.com:8443/oauth2/start): a sign-in proxy" in msg
    assert "set the profile's prometheus_url to Prometheus' own in-cluster address" in msg
    assert SECRET not in msg and "client_id" not in msg and "frag" not in msg


def test_a_relative_redirect_followed_by_the_caller_s_client_is_named_too():
    """A client that follows redirects got the sign-in page with 200: it read as `is the profile's prometheus_url
    Prometheus' HTTP API?`, the redirect unsaid."""
    with SignInProxy(f"/oauth2/sign_in?rd=%2F&state={SECRET}") as proxy, httpx.Client(follow_redirects=True) as client:
        msg = _error(proxy, client)
    assert f"was redirected (302 to {proxy.url}/oauth2/sign_in): a sign-in proxy" in msg and SECRET not in msg
