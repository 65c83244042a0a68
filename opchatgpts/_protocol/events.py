"""AI Engine's event shapes: one JSON payload in, one typed event out. No I/O.

* ``{"type":"live","data":"..."}``: answer text, unless a ``subtype`` other than ``content``
  marks it as progress information (thinking, tool calls, status...).
* ``{"type":"end","data":"<JSON string>"}``: the final payload, JSON encoded a second time.
* ``{"type":"error","data":"..."}``: the query failed.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Optional

from .._exceptions import RemoteProtocolError, ServerReportedError
from .._models import ChatResult, Done, Event, LiveEvent, TextDelta, Usage

__all__ = ["parse_event", "result_from_payload"]

log = logging.getLogger("opchatgpts")

_loads = json.loads
_raw_decode = json.JSONDecoder().raw_decode


def _loads_event(payload: str) -> Any:
    """``json.loads``, without most of its per-call cost (a third of the time per event) for a
    payload that is exactly one JSON value. Anything else goes through ``json.loads``."""
    try:
        obj, end = _raw_decode(payload)
    except ValueError:
        return _loads(payload)
    return obj if end == len(payload) else _loads(payload)


def parse_event(payload: str, chat_id: Optional[str] = None, site: Optional[str] = None) -> Optional[Event]:
    """Decode one event's ``data``. Returns ``None`` for event types this SDK does not know.

    Raises ``ServerReportedError`` for an ``error`` event and ``RemoteProtocolError`` for
    anything that is not an AI Engine event.
    """
    try:
        obj = _loads_event(payload)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise RemoteProtocolError(f"malformed event, not JSON: {_clip(payload)}") from exc
    if obj.__class__ is not dict:
        raise RemoteProtocolError(f"malformed event, not a JSON object: {_clip(payload)}")
    kind = obj.get("type")
    if kind == "live":
        subtype = obj.get("subtype")
        data = obj.get("data")
        if subtype is None or subtype == "content":
            if data.__class__ is not str:
                data = "" if data is None else str(data)
            return TextDelta(data)
        return LiveEvent(
            subtype=str(subtype),
            data=data,
            visibility=obj.get("visibility"),
            timestamp=obj.get("timestamp"),
            metadata=obj.get("metadata") or {},
        )
    if kind == "end":
        return Done(result_from_payload(_end_payload(obj.get("data")), chat_id, site))
    if kind == "error":
        message = obj.get("data")
        raise ServerReportedError(str(message) if message else "the server reported an error")
    if kind is None:
        raise RemoteProtocolError(f"malformed event, no type: {_clip(payload)}")
    log.debug("ignoring an event of unknown type %r", kind)
    return None


def _end_payload(data: Any) -> Mapping[str, Any]:
    if isinstance(data, str):
        try:
            data = _loads(data)
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(f"the end event's data is not JSON: {_clip(data)}") from exc
    if not isinstance(data, dict):
        raise RemoteProtocolError("the end event's data is not a JSON object")
    if data.get("success") is False:
        raise ServerReportedError(str(data.get("message") or "the server reported a failure"))
    return data


def result_from_payload(
    payload: Mapping[str, Any], chat_id: Optional[str] = None, site: Optional[str] = None
) -> ChatResult:
    """Build the ``ChatResult`` from an ``end`` payload or a non-streamed JSON answer."""
    reply = payload.get("reply")
    actions = payload.get("actions")
    token = payload.get("new_token")
    return ChatResult(
        reply=reply if isinstance(reply, str) else "",
        usage=Usage(payload["usage"]) if isinstance(payload.get("usage"), dict) else None,
        images=payload.get("images") if isinstance(payload.get("images"), list) else None,
        actions=actions if isinstance(actions, list) else [],
        chat_id=chat_id,
        site=site,
        new_token=token if isinstance(token, str) and token else None,
        raw=dict(payload),
    )


def _clip(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
