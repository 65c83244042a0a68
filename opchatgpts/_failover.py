"""Several sites for one call: try them in turn while it is safe, and remember which are down.

A call moves on to the next site only while nothing of the answer's text has been handed
out: after that, the caller already holds part of one answer, and a second site would start
another. A site that failed is skipped for a cool-down, then tried again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import AsyncGenerator, Callable, Dict, List, Sequence, Tuple

from ._exceptions import (
    ClientClosedError,
    DiscoveryError,
    InvalidMessagesError,
    InvalidMessagesTypeError,
    OpchatgptsError,
    all_sites_failed,
)
from ._models import Event, TextDelta
from ._options import CallOptions

__all__ = ["SiteHealth", "failover_batches", "fails_over", "DEFAULT_COOLDOWN"]

log = logging.getLogger("opchatgpts")

#: Seconds a site that failed is skipped for.
DEFAULT_COOLDOWN = 30.0

#: Errors that are the caller's, not the site's: another site would fail the same way.
_NOT_THE_SITES = (InvalidMessagesError, InvalidMessagesTypeError, DiscoveryError, ClientClosedError)


def fails_over(error: BaseException) -> bool:
    """Whether another site may succeed where this error happened before any text."""
    return isinstance(error, OpchatgptsError) and not isinstance(error, _NOT_THE_SITES)


class SiteHealth:
    """When each site last failed, shared by a client and its ``with_options`` copies."""

    def __init__(self, cooldown: float = DEFAULT_COOLDOWN) -> None:
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._down_until: Dict[str, float] = {}

    def order(self, sites: Sequence[CallOptions]) -> List[CallOptions]:
        """The sites to try, in order: the healthy ones as given, then those cooling down,
        the soonest back first."""
        now = time.monotonic()
        with self._lock:
            back_at = [self._down_until.get(options.site.rest_root, 0.0) for options in sites]
        healthy = [options for options, at in zip(sites, back_at) if at <= now]
        cooling = sorted((at, index) for index, at in enumerate(back_at) if at > now)
        return healthy + [sites[index] for _, index in cooling]

    def failed(self, options: CallOptions) -> None:
        with self._lock:
            self._down_until[options.site.rest_root] = time.monotonic() + self.cooldown

    def succeeded(self, options: CallOptions) -> None:
        if options.site.rest_root in self._down_until:
            with self._lock:
                self._down_until.pop(options.site.rest_root, None)


async def failover_batches(
    start: Callable[[CallOptions], AsyncGenerator[List[Event], None]],
    health: SiteHealth,
    sites: Sequence[CallOptions],
) -> AsyncGenerator[List[Event], None]:
    """The batches of the first site that answers; ``start`` opens one site's answer."""
    errors: List[Tuple[str, BaseException]] = []
    candidates = health.order(sites)
    for index, options in enumerate(candidates):
        batches = start(options)
        text_out = False
        try:
            async for batch in batches:
                if not text_out:
                    text_out = any(type(event) is TextDelta for event in batch)
                yield batch
        except Exception as error:
            if text_out or not fails_over(error):
                raise
            health.failed(options)
            errors.append((options.site.url, error))
            if index + 1 < len(candidates):
                log.info(
                    "%s failed (%s: %s); trying %s",
                    options.site.url, type(error).__name__, error, candidates[index + 1].site.url,
                )
            continue
        finally:
            await batches.aclose()
        health.succeeded(options)
        log.debug("answered by %s", options.site.url)
        return
    raise all_sites_failed(errors)
