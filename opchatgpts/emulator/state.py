"""What a route handler needs of the emulator: its settings and state, as a protocol.

The handlers (``submit``, ``files``) live below ``app``, which wires them to the routes; they
see the emulator through this interface rather than importing it.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from .faults import Faults
from .generations import Generation
from .uploads import UploadStore
from .wire import Context

__all__ = ["SiteState"]


class SiteState(Protocol):
    """The emulated site, as the handlers read and change it."""

    traits: Generation
    bot_ids: tuple[str, ...]
    delta_delay: float
    text_input_max_length: int
    event_logs: bool
    image_remote_upload: str
    faults: Faults
    uploads: UploadStore
    disconnects: int
    completed_streams: int

    @property
    def current_nonce(self) -> str: ...

    def next_response_id(self) -> str: ...

    def session_owner(self, request: web.Request, context: Context) -> str: ...

    def site_root(self, request: web.Request) -> str: ...
