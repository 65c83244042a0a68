"""Misbehaviour on demand: the :class:`Faults` knobs and how they change an answer."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .wire import Event, error_event
from .wordpress import JSON_TYPE

__all__ = ["EMULATED_FAILURE", "Faults", "apply_event_faults", "status_answer"]

EMULATED_FAILURE = "Emulated failure"
"""The ``error`` event's text for ``Faults.error_after``."""


@dataclass
class Faults:
    """Misbehaviour knobs; all off by default. Apply to chats/submit only.

    The event knobs (``delay``, ``drop_after``, ``omit_end``, ``malformed_after``,
    ``error_after``) act on ``text/event-stream`` answers. On a one-shot JSON
    answer, ``delay`` sleeps once before answering and ``drop_after=0`` resets the
    connection instead of answering; the others do nothing.
    """

    delay: float = 0.0
    """Seconds to sleep before each streamed event."""
    drop_after: int | None = None
    """After k events, abort the TCP connection (a reset, no chunked terminator)."""
    omit_end: bool = False
    """Finish the body cleanly but never send the ``end`` event."""
    malformed_after: int | None = None
    """After k events, send a truncated ``data:`` line, then end the body."""
    error_after: int | None = None
    """After k live events with answer text, send an ``error`` event ("Emulated failure")
    and end the body."""
    status: int | None = None
    """Answer chats/submit with this HTTP status instead (a proxy or CDN in front) ..."""
    body: bytes | str = b""
    """... and this body ..."""
    content_type: str = JSON_TYPE
    """... of this content type."""
    retry_after: str | None = None
    """Adds a ``Retry-After`` header to the status answer."""
    times: int | None = None
    """The status fault applies to this many requests, then the server behaves (None = always)."""


def status_answer(faults: Faults) -> web.Response | None:
    """The answer a proxy in front gives instead of the plugin, if ``faults`` asks for one.

    Each use counts down ``faults.times``.
    """
    if faults.status is None or faults.times == 0:
        return None
    if faults.times is not None:
        faults.times -= 1
    headers = {"Content-Type": faults.content_type}
    if faults.retry_after is not None:
        headers["Retry-After"] = faults.retry_after
    body = faults.body.encode("utf-8") if isinstance(faults.body, str) else faults.body
    return web.Response(status=faults.status, body=body, headers=headers)


def apply_event_faults(plan: list[Event], faults: Faults) -> list[Event]:
    """``plan`` with ``error_after`` and ``omit_end`` applied.

    The faults that act while sending (``delay``, ``drop_after``,
    ``malformed_after``) are the stream's business.
    """
    if faults.error_after is not None:
        texts = 0
        for index, event in enumerate(plan):
            # Progress events (rich live events without text) pass; the error takes
            # the place of the next text, or of the end.
            if texts == faults.error_after and (event.is_text or event.kind != "live"):
                plan = plan[:index] + [Event(error_event(EMULATED_FAILURE))]
                break
            texts += event.is_text
    if faults.omit_end:
        plan = [event for event in plan if event.kind != "end"]
    return plan
