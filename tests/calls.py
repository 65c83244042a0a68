"""One call through each API, for the tests that check every API the same way."""

from __future__ import annotations

import asyncio
from typing import Any

from opchatgpts import AsyncClient, Client

__all__ = ["APIS", "ask"]

#: The blocking client on aiohttp, the blocking client on requests, and the async client.
APIS = ["sync", "sync-requests", "async"]


def ask(api: str, url: str, text: str = "hi", **settings: Any) -> str:
    """Ask ``text`` through ``api``, on a client of its own with ``settings``."""
    if api == "async":

        async def run() -> str:
            async with AsyncClient(url, **settings) as client:
                return await client.ask(text)

        return asyncio.run(run())
    transport = "requests" if api == "sync-requests" else "aiohttp"
    with Client(url, transport=transport, **settings) as client:
        return client.ask(text)
