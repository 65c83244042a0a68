"""Run the AI Engine emulator (and the OpenAI-compatible bridge) on 127.0.0.1 for tests.

- :func:`serve_emulator`: a context manager for any code, sync or async; the
  server runs in a background thread with its own event loop.
- :func:`serve_emulator_async`: the same on the running event loop.
- :func:`serve_bridge` / :func:`serve_bridge_async`: the bridge in front of a site, the
  same two ways.
- The pytest fixture ``opchatgpts_emulator``, for projects that add
  ``pytest_plugins = ["opchatgpts.testing"]`` to their conftest. It serves the
  open generation; parametrize it indirectly with a generation name for another.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Optional

from aiohttp import web

from .emulator import Emulator

__all__ = [
    "RunningEmulator",
    "serve_emulator",
    "serve_emulator_async",
    "RunningBridge",
    "serve_bridge",
    "serve_bridge_async",
]

_HOST = "127.0.0.1"
_START_TIMEOUT = 10.0
# How long stopping waits for requests still being answered before cancelling them.
_SHUTDOWN_TIMEOUT = 1.0


@dataclass(frozen=True)
class RunningEmulator:
    """An emulator serving on 127.0.0.1, and where to reach it."""

    emulator: Emulator
    url: str
    """The site root, ``http://127.0.0.1:PORT``."""
    page_url: str
    """The chatbot page: ``url`` + the emulator's page path."""
    rest_url: str
    """The REST root: ``url`` + the emulator's REST prefix."""


async def _start(emulator: Emulator) -> tuple[web.AppRunner, RunningEmulator]:
    runner = web.AppRunner(
        emulator.make_app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, _HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    url = f"http://{_HOST}:{port}"
    running = RunningEmulator(
        emulator=emulator,
        url=url,
        page_url=url + emulator.page_path,
        rest_url=url + emulator.rest_prefix,
    )
    return runner, running


async def _cancel_other_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Thread body: run ``loop`` until stopped, then close it cleanly."""
    try:
        loop.run_forever()
        loop.run_until_complete(_cancel_other_tasks())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


@contextmanager
def serve_emulator(
    generation: str = "open", **emulator_kwargs: Any
) -> Iterator[RunningEmulator]:
    """Serve an :class:`Emulator` on a free port of 127.0.0.1 from a background thread.

    ``emulator_kwargs`` go to :class:`Emulator`. On exit the server, its event
    loop and its thread are stopped and joined.
    """
    emulator = Emulator(generation, **emulator_kwargs)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=_run_loop, args=(loop,), name="opchatgpts-emulator", daemon=True
    )
    thread.start()
    try:
        started = asyncio.run_coroutine_threadsafe(_start(emulator), loop)
        runner, running = started.result(_START_TIMEOUT)
        try:
            yield running
        finally:
            stopped = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            stopped.result(_START_TIMEOUT + _SHUTDOWN_TIMEOUT)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


@asynccontextmanager
async def serve_emulator_async(
    generation: str = "open", **emulator_kwargs: Any
) -> AsyncIterator[RunningEmulator]:
    """Serve an :class:`Emulator` on a free port of 127.0.0.1 from the running loop."""
    runner, running = await _start(Emulator(generation, **emulator_kwargs))
    try:
        yield running
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class RunningBridge:
    """An OpenAI-compatible bridge serving on 127.0.0.1, and where to reach it."""

    app: web.Application
    url: str
    """The server root, ``http://127.0.0.1:PORT``."""
    base_url: str
    """What an OpenAI client takes as ``base_url``: ``url`` + ``/v1``."""


async def _start_bridge(
    url: str, api_key: Optional[str], settings: Any
) -> tuple[web.AppRunner, Any, RunningBridge]:
    from ._client import AsyncClient
    from .bridge import create_app

    client = AsyncClient(url, **settings)
    try:
        app = create_app(client, api_key=api_key)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, _HOST, 0).start()
        except BaseException:
            await runner.cleanup()
            raise
    except BaseException:
        await client.aclose()
        raise
    root = f"http://{_HOST}:{runner.addresses[0][1]}"
    return runner, client, RunningBridge(app=app, url=root, base_url=root + "/v1")


@asynccontextmanager
async def serve_bridge_async(
    url: str, *, api_key: Optional[str] = None, **client_settings: Any
) -> AsyncIterator[RunningBridge]:
    """Serve the bridge (``opchatgpts.bridge.create_app``) in front of the site at ``url``
    on a free port of 127.0.0.1, from the running loop.

    ``client_settings`` go to the ``AsyncClient`` it creates (and closes on exit).
    """
    runner, client, running = await _start_bridge(url, api_key, client_settings)
    try:
        yield running
    finally:
        try:
            await runner.cleanup()
        finally:
            await client.aclose()


@contextmanager
def serve_bridge(
    url: str, *, api_key: Optional[str] = None, **client_settings: Any
) -> Iterator[RunningBridge]:
    """``serve_bridge_async`` from a background thread with its own event loop, for any
    code (a blocking ``openai.OpenAI`` client, say)."""
    from .bridge import DRAIN_TIMEOUT  # stopping may wait that long for open answers

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="opchatgpts-bridge", daemon=True)
    thread.start()
    try:
        manager = serve_bridge_async(url, api_key=api_key, **client_settings)
        started = asyncio.run_coroutine_threadsafe(manager.__aenter__(), loop)
        running = started.result(_START_TIMEOUT)
        try:
            yield running
        finally:
            stopped = asyncio.run_coroutine_threadsafe(manager.__aexit__(None, None, None), loop)
            stopped.result(_START_TIMEOUT + DRAIN_TIMEOUT)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:

    @pytest.fixture
    def opchatgpts_emulator(
        request: pytest.FixtureRequest,
    ) -> Iterator[RunningEmulator]:
        """An AI Engine emulator on 127.0.0.1 (open generation unless parametrized)."""
        generation = getattr(request, "param", "open")
        with serve_emulator(generation) as running:
            yield running
