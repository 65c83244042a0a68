"""Calls with a misspelt or mistyped keyword: mypy --strict flags each marked line
(tests/test_typing.py checks that it flags exactly these)."""

from __future__ import annotations

import opchatgpts
from opchatgpts import AsyncClient, Client, Opchatgpts


async def mistakes() -> None:
    opchatgpts.ask("hi", timout=5)  # error: unexpected keyword
    opchatgpts.ask("hi", max_retires="two")  # error: unexpected keyword
    opchatgpts.ask("hi", max_retries="two")  # error: wrong type
    opchatgpts.ask("hi", transport="curl")  # error: not a transport
    Client("https://example.com", timout=5)  # error: unexpected keyword
    Client("https://example.com", max_connections="10")  # error: wrong type
    Client("https://example.com").ask("hi", verify="yes")  # error: wrong type
    Client("https://example.com").with_options(proxxy="http://p:3128")  # error: unexpected keyword
    Client("https://example.com").stream("hi", chat_id=7)  # error: wrong type
    AsyncClient("https://example.com", transport="requests")  # error: no transport for async
    await AsyncClient("https://example.com").ask("hi", transport="aiohttp")  # error: no transport
    await opchatgpts.ask_async("hi", bot="default")  # error: unexpected keyword
    Opchatgpts.create_completion(None, [], temprature=1)  # error: unexpected keyword
    Opchatgpts.create_async_generator(None, [], url=5)  # error: wrong type
    opchatgpts.ask("hi", files=[5])  # error: not a file
    opchatgpts.ask("hi", max_file_bytes="20M")  # error: wrong type
    Client("https://example.com", files=["cat.png"])  # error: files go with a call
