"""Calls that are right: mypy --strict accepts every one (tests/test_typing.py)."""

from __future__ import annotations

import ssl

import opchatgpts
from opchatgpts import AsyncClient, Client, Opchatgpts, RetryPolicy, Site, Timeout


def blocking() -> str:
    client = Client("https://example.com", bot_id="default", timeout=5, max_retries=1, transport="requests")
    with client:
        fast = client.with_options(timeout=Timeout(connect=2, read=10, total=30), proxy=None)
        text = client.ask("hi", chat_id="abc", stream=False, verify=ssl.create_default_context())
        for delta in fast.stream([{"role": "user", "content": "hi"}], extra_body={"temperature": 0.2}):
            text += delta
        with client.stream_events("hi", headers={"X-Trace": "1"}) as events:
            for _event in events:
                pass
        client.conversation(url=Site("https://example.com", context_id=3)).ask("go on")
    Client(sites=["https://a.example", Site("https://b.example", bot_id="x")], max_connections=10)
    Client.from_page("https://example.com/chat/", bot_id="default", retry=RetryPolicy(max_retries=0))
    text += opchatgpts.ask("hi", url="https://example.com", timeout=3.5, transport="aiohttp")
    for part in Opchatgpts.create_completion("gpt-3.5-turbo", [{"role": "user", "content": "x"}], True, None):
        text += part
    return text


async def asynchronous() -> str:
    async with AsyncClient("https://example.com", max_retries=0) as client:
        text = await client.ask("hi", timeout=2)
        async with client.stream("hi") as stream:
            async for delta in stream:
                text += delta
    client = await AsyncClient.from_page("https://example.com/chat/")
    await client.aclose()
    text += await opchatgpts.ask_async("hi", url="https://example.com", max_line_bytes=1024)
    async for part in Opchatgpts.create_async_generator(None, [{"role": "user", "content": "x"}], proxy=None):
        text += part
    return text + await Opchatgpts.create_async("gpt-3.5-turbo", [{"role": "user", "content": "x"}])
