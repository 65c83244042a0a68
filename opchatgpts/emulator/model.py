"""The stand-in model behind the emulated plugin, as it answered in the recordings.

- It answers ``Echo: <text>``, then one tag per attachment of the user's turn
  (``[image <mime> <N> bytes]``, or ``[image <url>]`` for a file sent by URL), one
  word per delta: ``"Echo:"``, ``" hello"``, ``" [image"``, ``" image/png"``, ...
- ``FAIL_UPSTREAM`` and ``FAIL_429`` in the text make the call fail;
  ``FAIL_MIDSTREAM`` cuts it after two deltas; ``SLOW`` makes each delta take half
  a second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FAILURES",
    "MIDSTREAM_ERROR",
    "MIDSTREAM_TRIGGER",
    "SLOW_DELTA_DELAY",
    "STAND_IN_MODEL",
    "Attachment",
    "Completion",
    "UpstreamFailure",
    "complete",
    "word_count",
]

STAND_IN_MODEL = "fake-echo-1"
"""The model name the stand-in reports (in the ``status`` event's metadata)."""
SLOW_TRIGGER = "SLOW"
SLOW_DELTA_DELAY = 0.5
"""Seconds between deltas when the text contains ``SLOW`` (as recorded)."""
MIDSTREAM_TRIGGER = "FAIL_MIDSTREAM"
MIDSTREAM_ERROR = "cURL error 18: transfer closed with outstanding read data remaining"
"""How the plugin describes the upstream's cut (after the generation's prefix)."""
_MIDSTREAM_DELTAS = 2  # deltas sent before the recorded upstream cut


@dataclass(frozen=True)
class UpstreamFailure:
    """An upstream error answer of the stand-in: message, code and type."""

    message: str
    code: str
    type: str

    def body(self) -> str:
        """The upstream's JSON error body, as the stand-in sent it."""
        error = {"message": self.message, "type": self.type, "param": None, "code": self.code}
        return json.dumps({"error": error})


FAILURES = {
    "FAIL_UPSTREAM": UpstreamFailure(
        "The server had an error while processing your request. (fake upstream: FAIL_UPSTREAM)",
        "fake_upstream_failure",
        "server_error",
    ),
    "FAIL_429": UpstreamFailure(
        "Rate limit reached for requests (fake upstream: FAIL_429)", "rate_limit_exceeded", "requests"
    ),
}
"""Trigger text -> the failure the stand-in answers with."""


@dataclass(frozen=True)
class Attachment:
    """A file part of the user's turn, as the plugin hands it to the model."""

    mime: str
    """The type the plugin labels it with (its ``data:`` URL's type)."""
    size: int
    """The file's length in bytes."""
    url: str | None = None
    """Set when the plugin sends the file by URL rather than as a ``data:`` URL."""

    def tag(self) -> str:
        """How the stand-in echoes this part."""
        if self.url is not None:
            return f"[image {self.url}]"
        return f"[image {self.mime} {self.size} bytes]"


@dataclass(frozen=True)
class Completion:
    """What the stand-in does with one call."""

    deltas: list[str]
    """The text deltas it streams (before the cut, if ``cut``)."""
    failure: UpstreamFailure | None
    """The error it answers with instead of any text."""
    cut: bool
    """The stream breaks off after ``deltas``."""
    pause: float
    """Seconds each delta takes."""

    @property
    def reply(self) -> str:
        """The answer text: the deltas joined."""
        return "".join(self.deltas)


def complete(text: str, attachments: Sequence[Attachment] = (), *, delta_delay: float = 0.0) -> Completion:
    """The stand-in's answer to a user turn of ``text`` and ``attachments``."""
    pause = SLOW_DELTA_DELAY if SLOW_TRIGGER in text else delta_delay
    for trigger, failure in FAILURES.items():
        if trigger in text:
            return Completion([], failure, cut=False, pause=pause)
    parts = [part for part in (text, *(a.tag() for a in attachments)) if part]
    deltas = _deltas("Echo: " + " ".join(parts))
    if MIDSTREAM_TRIGGER in text:
        return Completion(deltas[:_MIDSTREAM_DELTAS], None, cut=True, pause=pause)
    return Completion(deltas, None, cut=False, pause=pause)


def _deltas(reply: str) -> list[str]:
    """Split a reply into the stand-in's deltas: "Echo:", " hello", " world"."""
    first, *rest = reply.split(" ")
    return [first] + [" " + word for word in rest]


def word_count(value: Any) -> int:
    """The stand-in's token count for a text: its words."""
    return len(value.split()) if isinstance(value, str) else 0
