"""WordPress's REST nonces for a guest: two valid at a time, and who checks them.

WordPress core checks a nonce sent with any REST request (the ``_wpnonce`` form or
query field, else the ``X-WP-Nonce`` header): a bad one is refused with 403, a good
one is answered with a fresh ``X-WP-Nonce`` header. The plugin's routes then check
the header alone (2.0+), and refuse with 401 when it is missing or bad.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

__all__ = ["NonceCheck", "NoncePair", "NonceState"]

NonceState = Literal["none", "current", "previous", "invalid"]
"""How a sent nonce compares with the valid ones (``none``: not sent)."""


def new_nonce(*taken: str) -> str:
    """A fresh 10-hex-digit nonce, different from the ones in ``taken``."""
    while True:
        nonce = secrets.token_hex(5)
        if nonce not in taken:
            return nonce


class NoncePair:
    """The current nonce tick and the previous one; both are accepted."""

    def __init__(self) -> None:
        """Two fresh nonces."""
        self.current = new_nonce()
        self.previous = new_nonce(self.current)

    def rotate(self) -> None:
        """Start a new tick: the current nonce becomes the previous one."""
        self.previous = self.current
        self.current = new_nonce(self.previous)

    def expire(self) -> None:
        """Invalidate both nonces."""
        old = (self.current, self.previous)
        self.current = new_nonce(*old)
        self.previous = new_nonce(self.current, *old)

    def state(self, nonce: str | None) -> NonceState:
        """How ``nonce`` compares with the valid ones."""
        if nonce is None:
            return "none"
        if nonce == self.current:
            return "current"
        if nonce == self.previous:
            return "previous"
        return "invalid"


@dataclass(frozen=True)
class NonceCheck:
    """What the nonce checks found for one request."""

    core: NonceState
    """The nonce WordPress core checked (``_wpnonce`` field or query, else the header)."""
    header: NonceState
    """The ``X-WP-Nonce`` header, which the plugin's permission check reads."""

    @property
    def plugin_allows(self) -> bool:
        """Whether a plugin route that wants a nonce lets the request in."""
        return self.header in ("current", "previous")
