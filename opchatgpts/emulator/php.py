"""PHP's and WordPress's ways with values: ``json_encode``, ``esc_attr``, truth, strings.

The plugin is PHP; these helpers make the emulator's bytes and decisions come out
the way PHP's would.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "decode_json",
    "html_attr",
    "is_json_content_type",
    "mysql_number",
    "php_json",
    "php_string",
    "php_truthy",
]


def php_json(value: Any) -> str:
    """Encode ``value`` like PHP's ``json_encode`` with default flags.

    Compact separators, ``/`` escaped as ``\\/`` and non-ASCII as ``\\uXXXX``.
    """
    # "/" only ever occurs inside JSON strings, so a plain replace is safe.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


def html_attr(text: str) -> str:
    """Escape ``text`` for a single-quoted HTML attribute like WordPress's ``esc_attr``."""
    for raw, escaped in (
        ("&", "&amp;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ('"', "&quot;"),
        ("'", "&#039;"),
    ):
        text = text.replace(raw, escaped)
    return text


def php_truthy(value: Any) -> bool:
    """PHP's idea of truth: "" and "0" are false, so are null, 0, false and []."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def php_string(value: Any) -> str:
    """PHP's string conversion for the scalar values a JSON body can hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, (int, float)):
        return str(value)
    return ""


def is_json_content_type(value: str) -> bool:
    """Whether WordPress would treat a body of this Content-Type as JSON."""
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _reject_constant(name: str) -> Any:
    # PHP's json_decode rejects NaN and Infinity, which Python's json accepts.
    raise ValueError(f"not JSON: {name}")


def decode_json(body: bytes) -> Any:
    """Decode ``body`` like PHP's ``json_decode``; ValueError where PHP would fail."""
    return json.loads(body, parse_constant=_reject_constant)


_LEADING_NUMBER = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def mysql_number(value: Any) -> float | None:
    """The number MySQL reads from ``value`` when comparing it with a numeric column.

    MySQL converts a string to the number its leading characters spell
    (``"25"`` is 25, ``"2613c6f9..."`` is 2613, ``"abc"`` is 0); None for values
    that are neither strings nor numbers.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _LEADING_NUMBER.match(value)
    return float(match.group()) if match else 0.0
