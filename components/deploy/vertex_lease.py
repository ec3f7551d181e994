"""The lease that keeps two deploys of one model apart on a Vertex endpoint (a scheduled retrain and a manual run).

Endpoint labels `kubepipe-lease-run` (the run id as a label value) and `kubepipe-lease-until` (epoch seconds), written
with `Endpoint.update(labels=...)`: aiplatform sends the Endpoint it read, etag included, so Vertex refuses the write
when anything changed the endpoint since (ABORTED / FAILED_PRECONDITION): read again, decide again. Labels change no
deployed model, so the lease is taken before anything is settled or switched, renewed once the deploy operation has
finished (it may take many minutes), and dropped at the end. Another run's lease that has not lapsed refuses the
deploy, naming the run and when it lapses; the same run (a retry of the step) takes it back at once, any run once it
lapsed (a killed holder). Every traffic switch of the rollout first reads the endpoint and checks it still names this
lease; the switch carries that read's etag, so a run that took over meanwhile makes it fail rather than interleave.
"""

from __future__ import annotations

import hashlib
import sys
import time

from kubepipe.components.deploy.lease_holder import lease_holder
from kubepipe.components.errors import ComponentError
from kubepipe.labels import gcp_label
from kubepipe.times import UTC_FORMAT

__all__ = ["RUN", "UNTIL", "EndpointLease", "LeaseLost", "DEPLOY_OP_S", "endpoint_id", "wait_unfinished"]

RUN = "kubepipe-lease-run"
UNTIL = "kubepipe-lease-until"
DEPLOY_OP_S = 3600  # the lease's margin for Vertex's deploy operation (bounded by Vertex, not by timeout_s)


class LeaseLost(ComponentError):
    """Another run took the endpoint over after this deploy's lease lapsed: this deploy switches nothing more."""


def _at(until) -> str:
    """An epoch-seconds label as UTC time."""
    return time.strftime(UTC_FORMAT, time.gmtime(int(until))) if str(until).isdigit() else str(until)


def _conflict(exc) -> bool:
    from google.api_core import exceptions as gexc

    return isinstance(exc, (gexc.Aborted, gexc.FailedPrecondition, gexc.Conflict))


class EndpointLease:
    def __init__(self, run_id: str, where: dict, duration_s: float):
        self.me = gcp_label(lease_holder(run_id))
        self.where, self.duration_s = where, duration_s
        self.name: str | None = None
        self.until: str | None = None

    def labels(self) -> dict[str, str]:
        """The labels a new endpoint is created with: the lease, taken by the create."""
        self.until = str(int(time.time() + self.duration_s))
        return {RUN: self.me, UNTIL: self.until}

    def create(self, display_name: str, labels: dict):
        """The model's endpoint, created with this lease on it under the model's own id (`endpoint_id`): Vertex creates
        an id once, so two first deploys at once make one endpoint. None when another deploy created it first
        (ALREADY_EXISTS): the caller reads it and takes the lease as for any endpoint found."""
        from google.api_core import exceptions as gexc
        from google.cloud import aiplatform

        try:
            endpoint = aiplatform.Endpoint.create(display_name=display_name, labels={**labels, **self.labels()},
                                                  endpoint_id=endpoint_id(display_name), **self.where)
        except gexc.Conflict:  # AlreadyExists over gRPC; REST's 409 maps to its base class
            self.until = None
            return None
        self.name = endpoint.resource_name
        return endpoint

    def take(self, name: str, duration_s: float | None = None):
        """The endpoint, read with this lease written on it; a ComponentError naming the holder when another run's
        lease has not lapsed."""
        from google.cloud import aiplatform

        held = self.until  # None: this deploy takes it; else renews the lease it holds
        for attempt in range(5):
            endpoint = aiplatform.Endpoint(name, **self.where)
            labels = dict(endpoint.labels or {})
            holder, until = labels.get(RUN), labels.get(UNTIL)
            mine = holder == self.me and (held is None or until == held)
            if holder and not mine and until and until.isdigit() and int(until) > time.time():
                if held is not None:  # this deploy held it, and its lease lapsed: another run took over
                    raise LeaseLost(self._lost(endpoint, holder, until), retryable=False)
                raise ComponentError(
                    f"model_name: the Vertex endpoint {name} is being deployed to by run {holder}: its lease (label "
                    f"{UNTIL}) lapses at {_at(until)}; nothing was "
                    "changed. Wait for that run to finish, or stop it, and run the deploy again; once the lease lapses "
                    "a deploy settles what that run left (rolled back unless the registry's champion is its version) "
                    "and goes on", retryable=False)
            if held is not None and not mine:  # ours lapsed and another run took it (and may be done)
                raise LeaseLost(self._lost(endpoint, holder, until), retryable=False)
            until = str(int(time.time() + (duration_s or self.duration_s)))
            try:
                endpoint.update(labels={**labels, RUN: self.me, UNTIL: until})
            except Exception as exc:  # noqa: BLE001 - the etag's refusal is read again; others are the caller's
                if not _conflict(exc) or attempt == 4:
                    raise
                continue
            self.name, self.until = name, until
            return endpoint
        return None

    def fresh(self):
        """The endpoint as it is now, while it names this lease (its etag fences the write that follows)."""
        from google.cloud import aiplatform

        endpoint = aiplatform.Endpoint(self.name, **self.where)
        labels = endpoint.labels or {}
        if labels.get(RUN) != self.me or labels.get(UNTIL) != self.until:
            raise LeaseLost(self._lost(endpoint, labels.get(RUN), labels.get(UNTIL)), retryable=False)
        return endpoint

    def _lost(self, endpoint, holder, until) -> str:
        return (f"the Vertex endpoint {endpoint.resource_name} was taken over by run {holder or '(none)'} (lease until "
                f"{_at(until)}) after this deploy's lease ({_at(self.until)}) lapsed; this deploy switched nothing "
                "more and its version did not become champion (a model it deployed is rolled back by the next deploy): "
                f"see `gcloud ai endpoints describe {endpoint.resource_name.rsplit('/', 1)[-1]}`")

    def release(self) -> str:
        """Drop the lease; a warning ('' when done or nothing was held): it lapses by itself anyway."""
        if self.name is None:
            return ""
        for attempt in range(3):
            try:
                endpoint = self.fresh()
                endpoint.update(labels={k: v for k, v in (endpoint.labels or {}).items() if k not in (RUN, UNTIL)})
                return ""
            except LeaseLost:
                return ""
            except Exception as exc:  # noqa: BLE001 - the rollout stands; the lease lapses at its time
                if _conflict(exc) and attempt < 2:
                    continue
                warning = (f"the lease labels {RUN}/{UNTIL} of endpoint {self.name} could not be removed "
                           f"({type(exc).__name__}); another run's deploy is refused until {_at(self.until)}")
                print(f"warning: {warning}", file=sys.stderr, flush=True)
                return warning
        return ""


def endpoint_id(name: str) -> str:
    """The endpoint id of a model's endpoint: digits from a hash of its name, 9 at most with no leading zero (Vertex's
    documented form for a user-chosen numeric id; older docs allow 1-10 digits), so one name always asks for one id."""
    return str(100_000_000 + int(hashlib.sha256(f"kubepipe/{name}".encode()).hexdigest(), 16) % 900_000_000)


def wait_unfinished(endpoint, deadline: float, poll_s: float) -> list[str]:
    """Wait until the endpoint has no unfinished operation (a deploy a killed step started goes on at Vertex, and
    takes its share when it finishes: after a split computed without it); the names of those waited for. Still
    unfinished at `deadline`: a ComponentError naming them, nothing changed."""
    waited: list[str] = []
    while True:
        ops = endpoint.api_client.list_operations(request={"name": endpoint.resource_name})
        pending = [op.name for op in ops.operations if not op.done]
        waited += [name for name in pending if name not in waited]
        if not pending:
            return waited
        if time.monotonic() >= deadline:
            raise ComponentError(
                f"model_name: the Vertex endpoint {endpoint.resource_name} has unfinished operations ({', '.join(pending)}"
                "), e.g. the deploy of a step that was killed: it would take its share of the traffic after this deploy "
                "computed its split; wait for them (`gcloud ai operations describe ID --region REGION`) and run the "
                "deploy again", retryable=True)
        time.sleep(poll_s)
