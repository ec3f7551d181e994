"""A real canary on a local endpoint: the proxy sends `percent` of the traffic to the new backend.

`bake` runs between the smoke test and the switch of `deploy_local`: it records the canary in
the endpoint record (intent, before the proxy moves), points the proxy at both backends, holds
for `bake_s` while real traffic arrives, then compares the two backends' numbers from the proxy
(`canary_analysis.analyze`). The canary is then either promoted by the normal recorded switch,
or rolled back by `repair` (the proxy back on the stable backend alone, the canary stopped),
the same path that settles a deploy killed during the bake.
"""

from __future__ import annotations

import os
import time

from kubepipe.components.errors import ComponentError, GateFailed
from kubepipe.components.serving import processes as P
from kubepipe.components.serving.endpoint_record import write_record
from kubepipe.components.serving.endpoint_repair import proxy_state, proxy_switch
from kubepipe.util import failpoint

__all__ = ["CanaryRejected", "bake", "proxy_state"]


class CanaryRejected(GateFailed):
    """Canary analysis rolled the new model back; `analysis` holds the decision and the numbers."""

    def __init__(self, message: str, analysis: dict):
        super().__init__(message)
        self.analysis = analysis


def bake(state_dir, name: str, rec: dict, new: dict, proc, proxy: dict, stable: dict, *, percent: int,
         settings: dict) -> dict:
    """Serve `new` as a canary for settings['bake_s'] and analyse it; the analysis dict.

    On return the record still names the canary: the caller promotes it (its switch clears
    `canary`) or rolls it back through `repair`.
    """
    from kubepipe.components.deploy.canary_analysis import analyze, preload

    me = os.getpid()
    canary = {**new, "percent": percent, "started_at": time.time(),
              "deployer": {"pid": me, "create_time": P.identity(me)}}
    rec.update(canary=canary, pending=[])
    write_record(state_dir, name, rec)  # intent: the canary is known (and owned) before it takes traffic
    proxy_switch(proxy, name, stable["port"], None, timeout_s=60, canary_port=new["port"])
    failpoint("deploy.canary-baking")
    t0 = time.monotonic()
    preload()  # inside the bake: not between the last scrape and the decision
    while time.monotonic() - t0 < settings["bake_s"] and proc.poll() is None:
        time.sleep(min(0.1, max(0.0, settings["bake_s"] - (time.monotonic() - t0))))
    try:
        revisions = proxy_state(proxy["port"]).get("revisions") or {}
    except (OSError, ValueError) as exc:  # a URLError (its proxy gone) was the run's internal error
        raise ComponentError(f"endpoint {name}: its proxy (127.0.0.1:{proxy['port']}, pid {proxy.get('pid')}) did not "
                             f"answer after the canary's bake ({type(exc).__name__}: {exc}), so the canary was not "
                             f"judged and is rolled back; `kubepipe endpoints repair {name}` starts the proxy "
                             "again") from None
    result = analyze(revisions.get(str(stable["port"])) or {}, revisions.get(str(new["port"])) or {}, settings)
    result.update(percent=percent, baked_s=round(time.monotonic() - t0, 3),
                  stable_version=stable.get("version"), canary_version=new.get("version"))
    if proc.poll() is not None:
        result.update(decision="rollback", why=f"the canary process exited with code {proc.returncode} during "
                                               f"the bake; {result['why']}")
    return result
