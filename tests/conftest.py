"""Shared fixtures: the emulator, and checks that no test leaks threads or warnings.

setup.cfg turns every warning into an error (``filterwarnings = error``). aiohttp also
reports an unclosed session or connector through the asyncio logger rather than a warning,
so an autouse fixture fails the test on those log records too.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
import warnings
from typing import Iterator, List

import pytest
from hypothesis import settings

from opchatgpts import _provider
from opchatgpts.testing import RunningEmulator, serve_emulator

# Hypothesis: CI (CI=true) and mutation testing draw the same examples on every run, so a
# failure found there replays; a developer's run draws new ones, which finds new cases.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))

# What exists once the libraries are imported lives until the end: leave it out of the
# collections that every test's leak check makes (they cost ~0.1 s each otherwise).
gc.freeze()

LEAK_PATTERNS = ("Unclosed", "unclosed", "Task was destroyed", "was never awaited")


class _LeakLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(p in message for p in LEAK_PATTERNS):
            self.records.append(message)


def _sdk_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name != "opchatgpts-loop" and t.is_alive()]


@pytest.fixture(autouse=True, scope="session")
def no_implicit_event_loop() -> Iterator[None]:
    """Mark the main thread as having no event loop, so nothing creates one behind our back.

    pytest-asyncio 1.2 (the last for Python 3.9) calls ``asyncio.get_event_loop()`` around
    each async test; in a main thread that never set a loop, that makes one and never closes
    it, and a later test's ``gc.collect()`` reports it as an unclosed event loop.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop(None)
    yield


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves an extra thread, an unclosed session or a destroyed task."""
    handler = _LeakLog()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(handler)
    before = {t.ident for t in _sdk_threads()}
    try:
        yield
        gc.collect()
        deadline = time.monotonic() + 5
        while True:
            extra = [t for t in _sdk_threads() if t.ident not in before]
            if not extra or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert not extra, f"threads left behind: {extra}"
        assert not handler.records, f"resources left open: {handler.records}"
    finally:
        asyncio_logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def fresh_site_credentials() -> Iterator[None]:
    """Forget the nonces the default client learned: an emulator port reused by a later test
    is another site."""
    _provider._default.get()._pool.credentials.clear()
    yield
    _provider._default.get()._pool.credentials.clear()


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """An AI Engine emulator (open generation) on 127.0.0.1."""
    with serve_emulator("open") as running:
        yield running


@pytest.fixture(params=["open", "nonce", "session"])
def any_generation(request: pytest.FixtureRequest) -> Iterator[RunningEmulator]:
    """The emulator in each server generation."""
    with serve_emulator(request.param) as running:
        yield running
