"""The cluster side of an InferenceService rollout: an ApiClient on a Configuration of its own (kube_api_client),
the few CustomObjectsApi calls a rollout makes, with readable errors (Isvc), and what an InferenceService's status
says: ready, pending or failed (readiness, wait_ready), and where its canary answers (canary_url, smoke_url)."""

from __future__ import annotations

import time

from kubepipe.components.errors import ComponentError

__all__ = ["GROUP", "VERSION", "PLURAL", "RolloutError", "Isvc", "kube_api_client", "readiness", "wait_ready",
           "canary_url", "smoke_url"]

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


class RolloutError(ComponentError):
    """The cluster refused the InferenceService (RBAC, no KServe, invalid object)."""

    status: int | None = None  # the API server's HTTP status, when it answered one (409: a conflict to retry)


def kube_api_client(config_file: str | None = None, context: str | None = None):
    """An ApiClient on a Configuration of its own: the pod's service account inside a pipeline pod, else the
    kubeconfig (`config_file`, which wins over the pod's; else kubernetes' default: $KUBECONFIG or ~/.kube/config;
    `context`: else its current context). The process's default Configuration, which kubernetes' loaders set when
    given none (the caller's own clients, another thread's rollout), is left as it was; and kubernetes' default
    location is read only while no kfp.Client build of another thread points it at a profile's auth.kubeconfig."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if config_file is None:
        try:
            config.load_incluster_config(client_configuration=cfg)
            return client.ApiClient(cfg)
        except config.ConfigException:
            cfg = client.Configuration()  # a half-loaded in-cluster config: start again
    from kubepipe.kfp_client_build import kubeconfig_file

    try:  # the default file is read under the lock that kfp.Client's builds hold while they point it elsewhere
        with kubeconfig_file(None, reads_kubeconfig=config_file is None):
            config.load_kube_config(config_file=config_file, context=context, client_configuration=cfg)
    except Exception as exc:  # noqa: BLE001 - ConfigException, a YAML error, an unreadable file: none a retry mends
        import os

        where = config_file or (f"{os.environ['KUBECONFIG']} ($KUBECONFIG)" if os.environ.get("KUBECONFIG")
                                else "~/.kube/config (no $KUBECONFIG)")
        raise RolloutError(f"no Kubernetes cluster to deploy to: not inside a pod (no in-cluster service account) "
                           f"and the kubeconfig {where} cannot be loaded: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:300]}; point KUBECONFIG at the cluster's kubeconfig "
                           "(`kubectl config current-context` names the one in use), or run the pipeline on the "
                           "cluster") from None
    return client.ApiClient(cfg)


def readiness(obj: dict, *, canary: bool) -> tuple[str, str]:
    """('ready' | 'pending' | 'failed', why) for the object's current generation."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    gen, seen = meta.get("generation"), status.get("observedGeneration")
    if gen is not None and (seen is None or seen < gen):
        return "pending", f"controller has not yet observed generation {gen}"
    model = status.get("modelStatus") or {}
    if (model.get("states") or {}).get("targetModelState") == "FailedToLoad":
        info = model.get("lastFailureInfo") or {}
        return "failed", f"model failed to load: {info.get('reason', '?')}: {info.get('message', '')}".rstrip(": ")
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conds.get("Ready")
    if not ready or ready.get("status") != "True":
        why = (ready or {}).get("message") or (ready or {}).get("reason") or "no Ready condition yet"
        return "pending", f"not Ready: {why}"
    pred = (status.get("components") or {}).get("predictor") or {}
    created, done = pred.get("latestCreatedRevision"), pred.get("latestReadyRevision")
    if canary and created and done != created:
        return "pending", f"revision {created} not ready yet (latest ready: {done})"
    return "ready", "Ready"


def canary_url(obj: dict) -> str | None:
    status = obj.get("status") or {}
    pred = (status.get("components") or {}).get("predictor") or {}
    for entry in pred.get("traffic") or []:
        if entry.get("tag") == "latest" and entry.get("url"):
            return entry["url"]
    return pred.get("url") or status.get("url")


def smoke_url(obj: dict, mode: str, base_url: str | None) -> str | None:
    """Where the smoke test reaches the new version from the pipeline's pod. RawDeployment: the cluster-internal
    service (`status.address.url`), as `status.url` is the ingress domain (`<name>-<ns>.example.com` until the
    cluster has one), which the pod cannot resolve; through the profile's ingress_url, that domain as Host."""
    internal = ((obj.get("status") or {}).get("address") or {}).get("url")
    if mode == "raw" and internal and not base_url:
        return internal
    return canary_url(obj)


class Isvc:
    """The few CustomObjectsApi calls a rollout needs, with readable errors."""

    def __init__(self, api_client, namespace: str, name: str):
        from kubernetes import client

        self.api, self.ns, self.name = client.CustomObjectsApi(api_client), namespace, name
        # the API server's clock at the last read (its Date header): one clock for every deploy's lease, as the pods'
        # wall clocks may disagree by minutes (decision 0021)
        self.read_at: float | None = None

    def _call(self, what: str, fn, *args, **kw):
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(GROUP, VERSION, self.ns, PLURAL, *args, **kw)
        except ApiException as exc:
            self.read_at = _date(exc.headers) or self.read_at  # a refusal is the server's answer, on its clock too
            if exc.status == 404 and what in ("get", "delete"):  # gone: nothing to read, or deleted already
                return None
            hint = {401: "the cluster credentials were refused",
                    403: f"grant the pipeline's service account {what} on inferenceservices in {self.ns}",
                    404: "is KServe installed (serving.kserve.io/v1beta1 CRD) and does the namespace exist?",
                    409: "another rollout changed it at the same time; the step's retry starts over",
                    422: "the API server rejected the InferenceService as invalid"}.get(exc.status, "")
            error = RolloutError(f"kubernetes {what} inferenceservices/{self.name} in {self.ns} failed "
                                 f"({exc.status} {exc.reason}): {hint} {(exc.body or '')[:300]}".strip(),
                                 retryable=exc.status not in (400, 401, 403, 404, 422))
            error.status = exc.status
            raise error from None

    def get(self):
        answer = self._call("get", self.api.get_namespaced_custom_object_with_http_info, self.name)
        if answer is None:
            return None
        obj, _, headers = answer
        self.read_at = _date(headers) or self.read_at
        return obj

    def now(self) -> float:
        """The API server's time at the last read (a 404 too); this machine's clock before any read or with no Date
        header."""
        return self.read_at if self.read_at is not None else time.time()

    def create(self, body):
        return self._call("create", self.api.create_namespaced_custom_object, body)

    def replace(self, body):
        return self._call("update", self.api.replace_namespaced_custom_object, self.name, body)

    def patch(self, body):
        return self._call("patch", self.api.patch_namespaced_custom_object, self.name, body)

    def delete(self):
        return self._call("delete", self.api.delete_namespaced_custom_object, self.name)


def _date(headers) -> float | None:
    """An HTTP Date header (to the second) as epoch seconds; None when there is none or it is unreadable."""
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(str((headers or {}).get("Date") or "")).timestamp()
    except (TypeError, ValueError):
        return None


def wait_ready(isvc: Isvc, *, canary: bool, deadline: float, poll_s: float) -> tuple[bool, str, dict]:
    while True:
        try:
            obj = isvc.get()
        except RolloutError as exc:  # an API server's 5xx / 429 while polling ended the step, the canary on its share
            if not exc.retryable:
                raise
            if time.monotonic() >= deadline:
                return False, f"not Ready before the timeout (last read: {exc})", {}
            time.sleep(poll_s)
            continue
        if obj is None:  # waiting for the timeout on a deleted object, then 'is KServe installed?' at the rollback
            return False, (f"inferenceservices/{isvc.name} in {isvc.ns} is gone: another client deleted it during "
                           "the rollout"), {}
        state, why = readiness(obj, canary=canary)
        if state != "pending":
            return state == "ready", why, obj
        if time.monotonic() >= deadline:
            return False, f"not Ready before the timeout ({why})", obj
        time.sleep(poll_s)
