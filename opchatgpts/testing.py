"""Run the AI Engine emulator on 127.0.0.1 for tests.

- :func:`serve_emulator`: a context manager for any code, sync or async; the
  server runs in a background thread with its own event loop.
- :func:`serve_emulator_async`: the same on the running event loop.
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
from typing import Any

from aiohttp import web

from .emulator import Emulator

__all__ = ["RunningEmulator", "serve_emulator", "serve_emulator_async"]

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
