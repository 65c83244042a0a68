"""The nonce and session of each site, kept by a client for every call it makes.

AI Engine let guests in three ways over its history (PROTOCOL.md, "Generations"): no nonce
(1.9.x), a nonce printed in the chatbot page (2.0.1-2.4.3), or a nonce from
``start_session`` (2.4.4+). A client starts with no nonce and learns from the answers; this
module keeps what it learned. Calls on different event loops (the sync thread and the
caller's own loop) share it, and a refresh runs once however many calls need it at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from dataclasses import dataclass
from typing import Awaitable, Callable, Dict, Optional

from ._exceptions import APITimeoutError

__all__ = ["Credentials", "SiteAuth", "CredentialStore", "mask"]

#: How long a call without an event loop waits for another call's nonce refresh.
REFRESH_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class Credentials:
    """What lets a guest in: a nonce for ``X-WP-Nonce`` and a session id for the body.

    ``generation`` says where a fetched nonce came from, which tells the site's plugin
    generation: ``"session"`` (``start_session``, 2.4.4+) or ``"nonce"`` (the page,
    2.0-2.4.3).
    """

    nonce: Optional[str] = None
    session_id: Optional[str] = None
    generation: Optional[str] = None

    def __repr__(self) -> str:
        return f"Credentials(nonce={mask(self.nonce)}, session_id={self.session_id!r})"


def mask(secret: Optional[str]) -> str:
    """A nonce fit for logs and messages: never more than its first two characters."""
    if not secret:
        return "none"
    return secret[:2] + "…"


class SiteAuth:
    """The credentials of one site (keyed by its REST root)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials = Credentials()
        self._refreshing: Optional["concurrent.futures.Future[Optional[Credentials]]"] = None
        self._generation: Optional[str] = None

    @property
    def credentials(self) -> Credentials:
        """The current nonce and session id (either may be ``None``)."""
        return self._credentials

    @property
    def generation(self) -> Optional[str]:
        """The site's plugin generation, once learned: ``"open"`` (1.9.x: no nonce needed),
        ``"nonce"`` (2.0-2.4.3: the page's nonce) or ``"session"`` (2.4.4+: start_session's)."""
        return self._generation

    def learn_generation(self, generation: Optional[str]) -> None:
        """Keep what a call learned of the site's generation."""
        if generation:
            self._generation = generation

    def remember(self, nonce: Optional[str] = None, session_id: Optional[str] = None) -> None:
        """Keep a nonce (a ``new_token``, a page's ``restNonce``) and/or a session id."""
        with self._lock:
            current = self._credentials
            self._credentials = Credentials(
                nonce or current.nonce, session_id or current.session_id
            )

    def forget(self, nonce: str) -> None:
        """Drop ``nonce`` if it is the one kept (a site that turned out to need none)."""
        with self._lock:
            if self._credentials.nonce == nonce:
                self._credentials = Credentials(None, self._credentials.session_id)

    async def refresh(
        self, fetch: Callable[[], Awaitable[Credentials]], rejected: Optional[str]
    ) -> Credentials:
        """Replace the nonce that was ``rejected`` (``None``: there was none).

        ``fetch`` gets new credentials from the site. If another call already replaced the
        rejected nonce, its result is used; if one is fetching now, this call waits for it.
        Cancelling a waiting call never reaches the shared fetch, and if the call that
        fetches is cancelled, a waiting call takes over.
        """
        while True:
            with self._lock:
                current = self._credentials
                if current.nonce and current.nonce != rejected:
                    return current
                pending = self._refreshing
                owner = pending is None
                if pending is None:
                    pending = self._refreshing = concurrent.futures.Future()
            if owner:
                return await self._fetch(fetch, pending)
            result = await _wait(pending)
            if result is not None:
                return result
            # The call that was fetching was interrupted: this one may take over.

    async def _fetch(
        self,
        fetch: Callable[[], Awaitable[Credentials]],
        pending: "concurrent.futures.Future[Optional[Credentials]]",
    ) -> Credentials:
        try:
            credentials = await fetch()
        except BaseException as exc:
            with self._lock:
                self._refreshing = None
            # A failure is shared with the waiting calls; an interruption (cancellation,
            # Ctrl-C) is this call's own business: the waiting calls try again themselves.
            if isinstance(exc, Exception):
                pending.set_exception(exc)
            else:
                pending.set_result(None)
            raise
        with self._lock:
            self._credentials = Credentials(
                credentials.nonce, credentials.session_id or self._credentials.session_id
            )
            self._generation = credentials.generation or self._generation
            self._refreshing = None
            result = self._credentials
        pending.set_result(result)
        return result


async def _wait(pending: "concurrent.futures.Future[Optional[Credentials]]") -> Optional[Credentials]:
    """Wait for another call's fetch, without ever cancelling it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # Driven by hand with no event loop (transport="requests"): this caller is a plain
        # thread and may block. The bound is a safety net against a deadlock.
        if not concurrent.futures.wait([pending], REFRESH_WAIT_SECONDS).done:
            raise APITimeoutError(
                f"another call's nonce request took over {REFRESH_WAIT_SECONDS:g}s"
            ) from None
        return pending.result()
    # shield: cancelling this waiter must not cancel the future every waiter shares.
    return await asyncio.shield(asyncio.wrap_future(pending))


class CredentialStore:
    """The credentials of every site one client has talked to, keyed by REST root."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sites: Dict[str, SiteAuth] = {}

    def for_site(self, rest_root: str) -> SiteAuth:
        """The credentials of the site whose REST root is ``rest_root``."""
        auth = self._sites.get(rest_root)
        if auth is None:
            with self._lock:
                auth = self._sites.setdefault(rest_root, SiteAuth())
        return auth

    def clear(self) -> None:
        """Forget every nonce and session."""
        with self._lock:
            self._sites.clear()
