"""kubepipe's kfp.Client, and the parts of kfp and kubernetes it relies on that have no public API (decision 0018).

kubepipe.clients builds the client from a profile; this module holds what reaches past kfp's and kubernetes'
documented surface, each part checked before use, with a UserError (kubepipe.kfp_private.missing) naming the
installed version and what changed when it is gone.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import threading
from typing import Any, Iterator, NoReturn

from kubepipe.errors import UserError
from kubepipe.dependency_pins import changed, signature_problem
from kubepipe.kfp_private import missing

__all__ = ["kfp_client_class", "bound_calls", "kubeconfig_file", "kube_config_module", "KUBERNETES_DECLARED",
           "NotTheApisAnswer", "html_page"]

KUBERNETES_DECLARED = "kubernetes>=29"  # as pyproject.toml declares it

_KUBECONFIG_LOCK = threading.Lock()  # kubernetes' default kubeconfig location (kubeconfig_file)


@contextlib.contextmanager
def kubeconfig_file(path: str | None, reads_kubeconfig: bool = True, where: str = "profile") -> Iterator[None]:
    """The profile's auth.kubeconfig while kfp.Client is built: kfp loads the kubernetes package's default file,
    which that package reads from $KUBECONFIG once, when imported, so the shell's KUBECONFIG won over the profile.
    kfp.Client takes no kubeconfig file, so that default, an undocumented kubernetes global, is set for the build
    (decision 0018; checked by kube_config_module). It is one value in the process: a client that reads it
    (`reads_kubeconfig`) is built holding a lock, or two threads of a service building clients for two profiles
    each reached the other's cluster."""
    if not reads_kubeconfig:
        yield
        return
    with _KUBECONFIG_LOCK:
        if path is None:
            yield
            return
        kube_config = kube_config_module(path, where)
        before, kube_config.KUBE_CONFIG_DEFAULT_LOCATION = kube_config.KUBE_CONFIG_DEFAULT_LOCATION, path
        try:
            yield
        finally:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = before


def kube_config_module(path: str, where: str) -> Any:
    """kubernetes.config.kube_config if load_kube_config() still finds its file at KUBE_CONFIG_DEFAULT_LOCATION;
    else a UserError naming the kubernetes version and what changed (setting the name would change nothing, and
    kfp would load the shell's kubeconfig: another cluster)."""
    from kubernetes.config import kube_config

    name = "kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION"
    load = getattr(kube_config, "load_kube_config", None)
    problem = signature_problem(load, ["config_file"], match="includes")
    if not isinstance(getattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", None), str):
        why = f"{name} is gone"
    elif problem or load is None:  # signature_problem says so of None too: mypy reads the narrowing here
        why = f"kubernetes.config.kube_config.load_kube_config {problem}"
    elif inspect.signature(load).parameters["config_file"].default is not None:
        why = "load_kube_config() no longer takes config_file=None (the file at " + name + ")"
    else:
        return kube_config
    raise UserError(changed(f"{where}.auth.kubeconfig: kubepipe cannot point kfp.Client at {path} with", "kubernetes",
                            why, KUBERNETES_DECLARED, "Setting it would change nothing and kfp would load the shell's "
                            f"kubeconfig (another cluster). Remove auth.kubeconfig and start with `export "
                            f"KUBECONFIG={path}` (any kubernetes release), or: "))


def kfp_client_class():
    """kfp.Client, asking healthz once: kfp's own get_kfp_healthz (called by its constructor) tries 5 times, 5 s
    apart, logging a traceback each time, and then says only 'Failed getting healthz endpoint' - a refused
    token took 25 s and looked like a host that cannot be reached.

    Every API call has a timeout: kfp passes none, so a host that accepted the connection and never answered
    (a stuck port-forward or proxy) hung the command. The generated API's `_request_timeout` argument (its
    documented per-call timeout) is given to each call through the ApiClient the generated APIs share."""
    import kfp

    class Client(kfp.Client):
        def __init__(self, *args, request_timeout_s: float = 60, **kwargs):
            self._kubepipe_timeout = (min(10.0, request_timeout_s), request_timeout_s)
            super().__init__(*args, **kwargs)
            bound_calls(getattr(getattr(self, "healthzs", None), "api_client", None)
                        or _changed("kfp.Client has no healthzs.api_client (the ApiClient its generated APIs share)"),
                        self._kubepipe_timeout)

        def get_kfp_healthz(self, sleep_duration: int = 5):
            api = getattr(self, "_healthz_api", None)  # kfp's own, private: its constructor asks it
            if api is None:
                _changed("kfp.Client has no _healthz_api")
            bound_calls(api.api_client, self._kubepipe_timeout)  # the constructor's health check is checked too
            return api.healthz_service_get_healthz(_request_timeout=self._kubepipe_timeout)

    return Client


def bound_calls(api_client: Any, timeout: tuple[float, float]) -> None:
    """Give every request of `api_client` (kfp_server_api.ApiClient) `timeout` unless the call sets its own, and
    refuse a 2xx answer that is not JSON (`NotTheApisAnswer`): the generated client deserialised a login page or
    a proxy's HTML, or JSON cut short, into an empty model, and `submit` said 'submitted: run None'."""
    if getattr(api_client, "_kubepipe_bound", False):
        return
    request = api_client.request
    problem = signature_problem(request, ["_request_timeout"], match="includes")  # fail loudly if the API changes
    if problem:
        _changed(f"kfp_server_api.ApiClient.request {problem}")

    def bounded(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        response = request(*args, _request_timeout=_request_timeout or timeout, **kwargs)
        if kwargs.get("_preload_content", True):
            refuse_unreadable(response)
        return response

    api_client.request = bounded
    api_client._kubepipe_bound = True


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)


def html_page(body: bytes | str) -> str | None:
    """'an HTML page ('502 Bad Gateway')' when `body` is one (a proxy's error or login page), else None: said so,
    not as the page's markup."""
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    head = raw.lstrip()[:512].lower()
    if not (head.startswith(b"<!doctype html") or head.startswith(b"<html") or b"<head" in head or b"<body" in head):
        return None
    title = _TITLE.search(raw[:4096])
    named = " ".join(title.group(1).decode("utf-8", "replace").split())[:80] if title else ""
    return f"an HTML page{f' ({named!r})' if named else ''}"


class NotTheApisAnswer(Exception):
    """A 2xx answer of a KFP host that is not the API's JSON. `service_fault`: JSON cut short (the service's or the
    network's fault: run again), not an HTML page (a login or proxy page: the profile's `host` or token)."""

    def __init__(self, status: int, body: str, hint: str, service_fault: bool) -> None:
        super().__init__(body)
        self.status, self.body, self.hint, self.service_fault = status, body, hint, service_fault


def refuse_unreadable(response: Any) -> None:
    if not hasattr(response, "data"):  # kfp_server_api's RESTResponse: the body its deserializer reads
        _changed("kfp_server_api.ApiClient.request returns no .data (the answer's body), so an answer that is not the "
                 "API's JSON cannot be told")
    data = response.data
    if not isinstance(data, (bytes, str)) or not data.strip():
        return
    raw = data.encode() if isinstance(data, str) else data
    try:
        json.loads(raw)
        return
    except ValueError:
        pass
    status = getattr(response, "status", 200)
    page = html_page(raw)
    if page:
        raise NotTheApisAnswer(
            status, f"{page} came back, not the KFP API's JSON",
            "`host` must reach the KFP API (ml-pipeline, e.g. http://localhost:8888 after `kubectl port-forward -n "
            "kubeflow svc/ml-pipeline 8888:8888`); a login page is a proxy in front of it asking for a bearer "
            "token, which kubepipe reads from the variable that auth.token_env names", service_fault=False)
    raise NotTheApisAnswer(status, f"the answer is not JSON ({len(raw)} bytes, cut short?)",
                           "run the command again; if it persists, look at the service and any proxy in front of it",
                           service_fault=True)


def _changed(why: str) -> NoReturn:
    """Raise the UserError for a part of kfp.Client that kubepipe's client relies on and that is gone."""
    raise missing("KFP client (a bounded health check and call timeouts)", why,
                  "Without it a KFP host that never answers would hang the command", "no KFP call is made")
