"""Clients of the remote services, built from a target profile plus the environment.

Shared by the backends (submit, schedule) and by components that start pipelines from
inside a run (drift-triggered retraining), so it sits below every layer and imports kfp only
inside the functions. Vertex's (aiplatform.init and the credentials each call is given) are in
kubepipe.vertex_clients.

Auth never comes from YAML (see kubepipe.secrets):
- KFP: a bearer token read from the env var named by `auth.token_env` (default `KFP_TOKEN`,
  used only when set); else `auth.kubeconfig` / `auth.kube_context` (the client then reaches
  the API through the Kubernetes API-server proxy); else inside a cluster the pod's
  service-account token with the in-cluster service `ml-pipeline.kubeflow:8888`.
- Vertex (kubepipe.vertex_clients): application-default credentials (or explicit `credentials` for tests).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import warnings
from contextvars import ContextVar
from typing import Any, Iterator, Mapping

from kubepipe.answers import RUN_AGAIN as _RUN_AGAIN
from kubepipe.answers import SERVICE_FAILED as _HINT_5XX
from kubepipe.errors import ServiceError, UserError
from kubepipe.kfp_client_build import bound_calls as _bound_calls  # noqa: F401  # tests import it from here
from kubepipe.kfp_client_build import kfp_client_class as _kfp_client_class
from kubepipe.kfp_client_build import kubeconfig_file as _kubeconfig_file
from kubepipe.secrets import check_profile_secrets

__all__ = ["kfp_client", "kfp_namespace", "quiet", "api_errors", "api_error_text", "service_name", "eq_filter",
           "refuse_inline_secrets", "service_failed", "IN_CLUSTER_KFP_HOST"]

IN_CLUSTER_KFP_HOST = "http://ml-pipeline.kubeflow:8888"
# Paths where Kubernetes / KFP mount a pod's tokens (file locations, not secrets).
_SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # nosec B105 - a file path
_KFP_SA_TOKEN = "/var/run/secrets/kubeflow/pipelines/token"  # nosec B105 - a file path KFP projects into pods


def eq_filter(key: str, value: str) -> str:
    """A KFP v2beta1 list filter: `key` EQUALS `value` (JSON, as kfp.Client's `filter=` takes it)."""
    import json

    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "stringValue": value}]})


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """kfp.Client prints links and warns on every call; keep the CLI output ours: what this thread prints and warns
    meanwhile is dropped, other threads' goes on. It swapped sys.stdout and the warning filters, which are the
    process's: two threads' calls overlapping (a service, a notebook's threads) left sys.stdout a dead StringIO and
    every warning ignored for the rest of the process."""
    global _quieting
    with _QUIET_HOOKS:
        _quieting += 1
        if not isinstance(sys.stdout, _QuietStdout):
            sys.stdout = _QuietStdout(sys.stdout)
        if warnings.showwarning is not _quiet_showwarning:
            _shown_by[0], warnings.showwarning = warnings.showwarning, _quiet_showwarning
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)
        with _QUIET_HOOKS:
            _quieting -= 1
            if not _quieting:  # each put back unless something else replaced it meanwhile
                if isinstance(sys.stdout, _QuietStdout):
                    sys.stdout = sys.stdout.inner
                if warnings.showwarning is _quiet_showwarning:
                    warnings.showwarning = _shown_by[0]


_QUIET: ContextVar[bool] = ContextVar("kubepipe_quiet", default=False)  # this thread's kfp calls are quiet()
_QUIET_HOOKS = threading.Lock()
_quieting = 0  # quiet() blocks going on, in all threads
_shown_by: list[Any] = [None]  # warnings.showwarning before quiet() put its own in


class _QuietStdout:
    """sys.stdout while a quiet() block goes on: a thread in one writes nothing, the others to the stream."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        return len(text) if _QUIET.get() else self.inner.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _quiet_showwarning(*args: Any, **kwargs: Any) -> None:
    if not _QUIET.get():
        _shown_by[0](*args, **kwargs)


_HINTS = {401: "the token was refused: refresh it (KFP: the env var named by auth.token_env; Vertex: "
                "`gcloud auth application-default login`)",
          403: "the identity lacks permission: check the namespace / IAM roles",
          404: "not found: check host, project and region",
          409: "it was changed meanwhile (or exists already): run the command again",
          429: "too many requests: wait a minute and run the command again"}


def service_name(target: str, profile: Mapping[str, Any]) -> str:
    """How an error names the service that answered: `kubeflow at http://host`, `vertex (project p, us-central1)`."""
    if target == "kubeflow":
        auth = profile.get("auth") or {}
        kube = auth.get("kubeconfig") or auth.get("context") or auth.get("kube_context")
        return f"kubeflow at {profile.get('host') or ('the kubeconfig cluster' if kube else IN_CLUSTER_KFP_HOST)}"
    if target == "vertex":
        if profile.get("api_endpoint"):
            return f"vertex at {profile['api_endpoint']}"
        return f"vertex (project {profile.get('project')}, {profile.get('region')})"
    return target


def _status_code(status: Any) -> int | None:
    """An HTTP status as an int (the clients give 404 or "404"), else None."""
    from kubepipe.util import whole_number

    return status if isinstance(status, int) and not isinstance(status, bool) else whole_number(status)


def api_error_text(exc: BaseException, missing: str | None = None) -> str | None:
    """'(status): what the server said; what to do' for an HTTP error of the KFP / Vertex clients, else None.
    `missing`: what to say when the API itself answers 404 (the call named one run, job or schedule: that one is not
    there), in place of the host hint, which is for a 404 of another server or proxy at the address."""
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    if callable(status):  # grpc-style code()
        status = None
    if status is None and type(exc).__module__.split(".")[0] not in ("kfp_server_api", "google", "urllib3",
                                                                     "requests"):
        return None
    body = getattr(exc, "body", None) or getattr(exc, "message", None) or str(exc)
    try:
        import json

        body = json.loads(body).get("error") or json.loads(body).get("message") or body
    except (TypeError, ValueError, AttributeError):
        pass
    from kubepipe.kfp_client_build import html_page

    text = html_page(str(body)) or " ".join(str(body).split())[:300]  # a proxy's error page: not its markup
    code = _status_code(status)
    hint = getattr(exc, "hint", None) or ((_HINTS.get(code) or (_HINT_5XX if code >= 500 else None)) if code else None)
    if code == 404 and missing and _the_apis_answer(exc):
        hint = missing
    if type(exc).__name__ == "ParseError" and type(exc).__module__.startswith("google.protobuf"):
        # a REST answer that is not the API's JSON: 'Failed to load JSON: Expecting value: line 1 column 1'
        text, hint = "the answer is not the API's JSON (an HTML page, or JSON cut short)", (
            "check api_endpoint (a proxy or login page in front of the API?); if it is right, run the command again")
    if type(exc).__name__ == "DefaultCredentialsError":
        key = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if key:  # set, but to a missing or malformed file: it was 'no Google credentials found; set it ...'
            why = " ".join(": ".join(str(a) for a in exc.args).split()).rstrip(".")[:300]
            text, hint = (f"GOOGLE_APPLICATION_CREDENTIALS={key} cannot be used: {why}",
                          "point it at a service-account key file (JSON), or unset it and run "
                          "`gcloud auth application-default login`")
        else:
            text, hint = "no Google credentials found", ("run `gcloud auth application-default login` (or set "
                                                        "GOOGLE_APPLICATION_CREDENTIALS to a key file path)")
    return f"({status or type(exc).__name__}): {text}" + (f"; {hint}" if hint else "")


def _the_apis_answer(exc: BaseException) -> bool:
    """The error's answer is the API's own JSON (KFP's `{"code": 5, ...}`, Google's `{"error": {...}}`) or gRPC, which
    only the API speaks; not a page of a proxy or of another server at the address (HTML, `404 page not found`)."""
    import json

    body = getattr(exc, "body", None)  # kfp_server_api's ApiException
    response = getattr(exc, "response", None)  # google.api_core's: a requests.Response over REST, a gRPC call
    if body is None and response is not None:
        if not hasattr(response, "text"):
            return True
        body = response.text
    if not isinstance(body, (str, bytes, bytearray)):
        return False
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


@contextlib.contextmanager
def api_errors(service: str, what: str, *, missing: str | None = None) -> Iterator[None]:
    """Turn HTTP errors of the KFP / Vertex clients into a short UserError that says what failed; `missing`: what a
    404 of the API itself means for this call (the run, job or schedule it names is not there, and what to do)."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        unnamed = _aiplatform_unnamed(exc)
        if unnamed:  # aiplatform's SDK object made of a 2xx answer without the resource's name
            raise ServiceError(f"{service}: {what} failed: the answer names no {unnamed} (no name): not the API's; "
                               f"{_RUN_AGAIN}") from exc
        said = api_error_text(exc, missing)
        if said is None:
            raise
        kind = ServiceError if service_failed(exc) else UserError
        raise kind(f"{service}: {what} failed {said}") from exc


def _aiplatform_unnamed(exc: BaseException) -> str | None:
    """The resource ('PipelineJob') when `exc` is aiplatform's RuntimeError for an object whose answer had no name
    ('PipelineJob resource has not been created'), raised as soon as anything reads it, else None."""
    import traceback

    if not isinstance(exc, RuntimeError):
        return None
    said = re.match(r"(\w+) resource has not been created", str(exc))
    frames = traceback.extract_tb(exc.__traceback__)
    in_aiplatform = any(f"{os.sep}google{os.sep}cloud{os.sep}aiplatform{os.sep}" in f.filename for f in frames)
    return said.group(1) if said and in_aiplatform else None


def service_failed(exc: BaseException) -> bool:
    """The service's fault, not the request's: 5xx, 408, 429, or no answer at all (exit 1, not 2). No answer is a
    connection or timeout error of any client (aiohttp's ClientConnectorError, botocore's EndpointConnectionError,
    google.auth's TransportError), or a retry that gave up on one (api_core's RetryError names it as `cause`)."""
    for _ in range(5):  # a cause's cause, a few at most
        fault = getattr(exc, "service_fault", None)  # kfp_client_build.NotTheApisAnswer's
        if isinstance(fault, bool):
            return fault
        status = getattr(exc, "status", None) or getattr(exc, "code", None)
        code = _status_code(status)
        if code is not None:
            return code >= 500 or code in (408, 429)
        if (type(exc).__module__.split(".")[0] in ("urllib3", "requests") or isinstance(exc, (ConnectionError,
                                                                                              TimeoutError))
                or any(_NO_ANSWER.search(t.__name__) for t in type(exc).__mro__)):
            return True
        cause = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(cause, BaseException):
            return False
        exc = cause
    return False


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\]]+)")
_NO_ANSWER = re.compile(r"Connect(ion|or)?Error|Timeout|^TransportError$")


def refuse_inline_secrets(profile: Mapping[str, Any], where: str) -> None:
    """A profile holding a credential inline is refused (UserError), one line per credential at its YAML path."""
    problems = check_profile_secrets(dict(profile), where)
    if problems:
        raise UserError("\n".join(problems))


def kfp_namespace(profile: Mapping[str, Any], client: Any = None) -> str | None:
    """The profile's namespace on a multi-user KFP, else None.

    Single-user KFP (installed in `kubeflow`) rejects or ignores namespace filters, so the
    namespace is only sent when the server's healthz says multi_user (asked once per client).
    """
    ns = profile.get("namespace") or None
    if not ns or client is None:
        return ns
    multi = getattr(client, "_kubepipe_multi_user", None)
    if multi is None:
        try:
            with quiet():
                multi = bool(client.get_kfp_healthz().multi_user)
        except Exception:  # an old server without the field: behave as single-user
            multi = False
        client._kubepipe_multi_user = multi
    return ns if multi else None


def kfp_client(profile: Mapping[str, Any], *, env: Mapping[str, str] | None = None, where: str = "profile"):
    """A real `kfp.Client` for the profile's `host` (or kubeconfig / in-cluster)."""
    refuse_inline_secrets(profile, where)
    env = os.environ if env is None else env
    auth = dict(profile.get("auth") or {})
    host = profile.get("host") or None
    token_env = auth.get("token_env") or "KFP_TOKEN"
    token = env.get(token_env) or None
    kwargs: dict[str, Any] = {"host": host}
    via, kubeconfig = host, None
    ns = kfp_namespace(profile)
    if ns:
        kwargs["namespace"] = ns
    if profile.get("ssl_ca_cert"):  # the profile had no such key: kfp only ever used the system's CAs
        kwargs["ssl_ca_cert"] = os.path.expanduser(str(profile["ssl_ca_cert"]))
        if not os.path.isfile(kwargs["ssl_ca_cert"]):
            raise UserError(f"{where}.ssl_ca_cert: no file {kwargs['ssl_ca_cert']}; point it at the PEM bundle of "
                            f"the CA that signed the KFP host's certificate")
    kube_context = auth.get("kube_context") or auth.get("context")
    in_pod = any(os.path.exists(p) for p in (_KFP_SA_TOKEN, env.get("KF_PIPELINES_SA_TOKEN_PATH") or "")
                 if p) or (os.path.exists(_SA_TOKEN) and bool(env.get("KUBERNETES_SERVICE_HOST")))
    if token:
        kwargs["existing_token"] = token
    elif auth.get("kubeconfig") or kube_context:
        via = _kube_route(auth, kube_context, where)
        kubeconfig = os.path.expanduser(str(auth["kubeconfig"])) if auth.get("kubeconfig") else None
        kwargs["kube_context"] = kube_context
        kwargs["host"] = None  # kfp then reaches ml-pipeline through the Kubernetes API-server proxy
    elif in_pod:  # a pipeline step inside the cluster (drift-triggered retraining)
        from kfp.client import ServiceAccountTokenVolumeCredentials

        kwargs["host"] = via = host or IN_CLUSTER_KFP_HOST
        if os.path.exists(env.get("KF_PIPELINES_SA_TOKEN_PATH") or _KFP_SA_TOKEN):
            kwargs["credentials"] = ServiceAccountTokenVolumeCredentials(path=env.get("KF_PIPELINES_SA_TOKEN_PATH"))
    elif auth.get("token_env"):
        raise UserError(
            f"{where}.auth.token_env: environment variable {token_env} is not set; "
            # `NAME=$(gcloud ...)` read as a credential's value: shown as `NAME=<redacted> auth ...`; a placeholder is kept
            f"export the KFP bearer token there (`export {token_env}=<token>`, e.g. the output of `gcloud auth "
            "print-access-token`)"
        )
    elif not host:
        raise UserError(
            f"{where}.host: no KFP endpoint; set `host:` in the kubeflow profile (e.g. "
            f"http://localhost:8080 after `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`) "
            f"or `auth.kubeconfig`"
        )
    timeout = float(profile.get("request_timeout_s") or 60)
    try:
        with quiet(), _kubeconfig_file(kubeconfig, kwargs["host"] is None, where):
            client = _kfp_client_class()(request_timeout_s=timeout, **kwargs)
    except UserError:  # kubepipe's own (_kube_config_module): it names the place already
        raise
    except Exception as exc:  # connection refused, bad TLS, 401 on healthz...
        said = api_error_text(exc) if getattr(exc, "status", None) else None
        if said:
            kind = ServiceError if service_failed(exc) else UserError
            raise kind(f"{where}.host: Kubeflow Pipelines at {via} failed its health check {said}") from exc
        if _timed_out(exc):
            raise ServiceError(f"{where}.host: Kubeflow Pipelines at {via} accepted the connection but did not "
                               f"answer its health check ({timeout:g} s per attempt: request_timeout_s); check the "
                               f"host and port (a proxy or port-forward that hangs?)") from exc
        why = _ERRNO.search(str(exc))  # urllib3's MaxRetryError runs to three lines: its errno's words say it
        kind = ServiceError if service_failed(exc) else UserError  # no answer: exit 1, as docs/cli.md's table says
        raise kind(f"{where}.host: cannot reach Kubeflow Pipelines at {via}: "
                        + (f"{why.group(1).strip().lower()}; check the host and port (a `kubectl port-forward` that "
                           "is not running?)" if why else str(exc))) from exc
    return client


def _kube_route(auth: Mapping[str, Any], context: str | None, where: str) -> str:
    """Where kfp will reach the API through the Kubernetes API server, checked first: kfp falls back to
    http://localhost:80 when the kubeconfig or its context cannot be loaded (printing only 'Failed to load kube
    config.'), and the error then named the profile's host, which it never tried."""
    from kubernetes import config as kube_config

    path = os.path.expanduser(str(auth["kubeconfig"])) if auth.get("kubeconfig") else None
    if path and not os.path.isfile(path):
        raise UserError(f"{where}.auth.kubeconfig: no file {path}; point it at your kubeconfig (e.g. ~/.kube/config), "
                        f"or use host with auth.token_env instead")
    try:
        contexts, current = kube_config.list_kube_config_contexts(config_file=path)
    except Exception as exc:  # ConfigException: no file at $KUBECONFIG / ~/.kube/config, or unreadable
        raise UserError(f"{where}.auth: cannot load the kubeconfig {path or '(KUBECONFIG / ~/.kube/config)'}: "
                        f"{' '.join(str(exc).split())[:200]}") from None
    names = [c["name"] for c in contexts]
    if context and context not in names:
        from kubepipe.util import did_you_mean

        hint = did_you_mean(context, names) or f"its contexts: {', '.join(names) or 'none'}"
        raise UserError(f"{where}.auth.context: {context!r} is not a context of {path or 'the kubeconfig'}; {hint}")
    return f"the Kubernetes API server of context {context or (current or {}).get('name')!r}"


def _timed_out(exc: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) or type(e).__name__ in ("ReadTimeoutError", "ConnectTimeoutError")
               for e in (exc, exc.__cause__, exc.__context__, *getattr(exc, "args", ())) if isinstance(e, BaseException))
