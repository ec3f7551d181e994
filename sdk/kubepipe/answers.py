"""What a remote API answered, read page by page and checked for the id of what it names (KFP and Vertex alike).

Below every layer, as kubepipe.clients (which re-exports these): the backends and components starting runs from a
pipeline step use them. An answer that is not the API's is a `kfp_client_build.NotTheApisAnswer` (service_fault:
exit 1, run again), which `clients.api_errors` says as it says any failed call.
"""

from __future__ import annotations

from typing import Any, Callable

from kubepipe.kfp_client_build import NotTheApisAnswer

__all__ = ["listed", "named", "SERVICE_FAILED", "RUN_AGAIN"]

SERVICE_FAILED = "the service failed: run the command again; if it persists, look at the service's status and logs"
RUN_AGAIN = SERVICE_FAILED + " (and of any proxy in front of it)"


def listed(fetch: Callable[[str], Any], items: str, key: str, *, enough: Callable[[list], bool] = lambda _: False,
           max_pages: int | None = None) -> list:
    """Every item of a listing (KFP v2beta1, or a Vertex GAPIC pager, whose attributes are its latest page's), page
    by page (`fetch(page_token)` -> a page), each once (by its `key` attribute: a run created meanwhile shifts the
    pages), until `enough(items so far)`. A page token given again (a server or proxy that loops) raises instead of
    asking for ever: `kubepipe schedule` hung, `runs list` listed a run many times."""
    out: list = []
    seen: set = set()
    tokens: set[str] = set()
    token, pages = "", 0
    while max_pages is None or pages < max_pages:
        page, pages = fetch(token), pages + 1
        for item in getattr(page, items, None) or []:
            if not getattr(item, key, None):  # `{}` in a list: it was a row of None
                raise NotTheApisAnswer(200, f"page {pages} of the listing holds an item without its {key}: not the "
                                            "API's answer", RUN_AGAIN, service_fault=True)
            if getattr(item, key, None) not in seen:
                seen.add(getattr(item, key, None))
                out.append(item)
        token = getattr(page, "next_page_token", None) or ""
        if not token or enough(out):
            break
        if token in tokens:
            raise NotTheApisAnswer(200, f"page {pages} of the listing gave a page token it gave before: the listing "
                                        "loops", RUN_AGAIN, service_fault=True)
        tokens.add(token)
    return out


def named(answer: Any, key: str, what: str) -> Any:
    """`answer`, when it carries its id `key`: a 2xx answer without one (`{}` of a proxy or a broken server) is not
    the API's, where the clients made an empty object of it (`submit` said 'run None', `--wait` waited for ever)."""
    if not getattr(answer, key, None):
        raise NotTheApisAnswer(200, f"the answer names no {what} (no {key}): not the API's", RUN_AGAIN,
                               service_fault=True)
    return answer
