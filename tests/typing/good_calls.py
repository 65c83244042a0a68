"""Calls that are right: mypy --strict accepts every one (tests/test_typing.py)."""

from __future__ import annotations

import io
import ssl
from pathlib import Path

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
        text += client.ask("what is this?", files=["cat.png", Path("dog.jpg"), b"\x89PNG", io.BytesIO(b"x")])
        text += client.ask("and this?", files=[("a.png", b"...", "image/png"), ("b", io.BytesIO(), None)])
        text += client.conversation().ask("this?", files=["cat.png"])
        parts = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:,x"}}]
        text += client.ask([{"role": "user", "content": parts}], max_file_bytes=1024)
    Client(sites=["https://a.example", Site("https://b.example", bot_id="x")], max_connections=10)
    Client("https://example.com", max_file_bytes=5 * 1024 * 1024).close()
    with Opchatgpts.stream_events([{"role": "user", "content": "x"}], files=["cat.png"]) as stream:
        text += str(stream.result)
    Client.from_page("https://example.com/chat/", bot_id="default", retry=RetryPolicy(max_retries=0))
    text += opchatgpts.ask("hi", url="https://example.com", timeout=3.5, transport="aiohttp")
    for part in Opchatgpts.create_completion("gpt-3.5-turbo", [{"role": "user", "content": "x"}], True, None):
        text += part
    for part in Opchatgpts.create_completion(None, [{"role": "user", "content": "x"}], files=["cat.png"]):
        text += part
    return text


async def asynchronous() -> str:
    async with AsyncClient("https://example.com", max_retries=0) as client:
        text = await client.ask("hi", timeout=2)
        async with client.stream("hi") as stream:
            async for delta in stream:
                text += delta
        text += await client.conversation().ask_async("this?", files=[b"\x89PNG"])
    client = await AsyncClient.from_page("https://example.com/chat/")
    await client.aclose()
    text += await opchatgpts.ask_async("hi", url="https://example.com", max_line_bytes=1024)
    text += await opchatgpts.ask_async("hi", files=[opchatgpts.Attachment("a.png", b"", "image/png")])
    async for part in Opchatgpts.create_async_generator(None, [{"role": "user", "content": "x"}], proxy=None):
        text += part
    messages = [{"role": "user", "content": "x"}]
    async for part in Opchatgpts.create_async_generator(None, messages, files=[b""]):
        text += part
    return text + await Opchatgpts.create_async("gpt-3.5-turbo", [{"role": "user", "content": "x"}])
