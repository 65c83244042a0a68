"""The floor of the stack: a bare loop that reads an AI Engine answer, on aiohttp or requests.

One pooled session (an aiohttp ``ClientSession``, or a ``requests.Session``), one POST, read
the body as it arrives, split the lines, ``json.loads`` each ``data:`` line, collect the
deltas. Nothing else: no retries, no checks, no hand-off.
"""

from __future__ import annotations

import json
import time
from typing import Any, List, Optional, Sequence

import aiohttp

SUBMIT_PATH = "/wp-json/mwai-ui/v1/chats/submit"
HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}
_CHUNK_BYTES = 64 * 1024
#: The requests floor's (connect, read) timeouts, so that a stuck server cannot stall the
#: benchmark (aiohttp's session has a total timeout of its own by default).
_TIMEOUTS = (10.0, 60.0)


def request_body(messages: Sequence[Any]) -> str:
    return json.dumps(
        {
            "botId": "default",
            "customId": None,
            "session": "N/A",
            "chatId": "floor",
            "contextId": None,
            "messages": list(messages[:-1]),
            "newMessage": messages[-1]["content"],
            "stream": True,
        }
    )


def take_deltas(rest: bytes, chunk: bytes, deltas: List[str]) -> bytes:
    """Append the deltas of the whole lines in ``rest + chunk``; return what is left over.

    Whole lines only: a chunk may end inside a line, or inside a UTF-8 character.
    """
    lines, _, rest = (rest + chunk).rpartition(b"\n")
    for line in lines.decode("utf-8").split("\n"):
        if line[:5] == "data:":
            event = json.loads(line[5:])
            if event["type"] == "live":
                deltas.append(event["data"])
    return rest


async def floor_text(
    session: aiohttp.ClientSession,
    url: str,
    messages: Sequence[Any],
    ssl: Any = True,
    first_token: Optional[List[float]] = None,
) -> str:
    """The answer's text. Appends the time of its first delta to ``first_token``, if given."""
    deltas: List[str] = []
    body = request_body(messages)
    async with session.post(url + SUBMIT_PATH, data=body, headers=HEADERS, ssl=ssl) as response:
        rest = b""
        async for chunk in response.content.iter_any():
            rest = take_deltas(rest, chunk, deltas)
            if first_token is not None and deltas and not first_token:
                first_token.append(time.perf_counter())
    return "".join(deltas)


def floor_text_requests(
    session: Any,  # a requests.Session
    url: str,
    messages: Sequence[Any],
    verify: Any = True,
    first_token: Optional[List[float]] = None,
) -> str:
    """The same on a pooled ``requests.Session``: the floor of the requests transport."""
    deltas: List[str] = []
    body = request_body(messages)
    post = session.post(
        url + SUBMIT_PATH, data=body, headers=HEADERS, verify=verify, stream=True, timeout=_TIMEOUTS
    )
    with post as response:
        rest = b""
        for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
            rest = take_deltas(rest, chunk, deltas)
            if first_token is not None and deltas and not first_token:
                first_token.append(time.perf_counter())
    return "".join(deltas)
