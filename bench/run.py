"""``make bench``: opchatgpts against the floor of its stack, a bare aiohttp loop.

It starts its own server on 127.0.0.1 in a separate process (``_server.py``), runs every
row once per round with the rows interleaved (their order rotates from round to round), and
prints one table of medians over the rounds. A ratio is taken within each round, against the
reference measured in that same round; the table shows the median of those ratios.

The per-call rows (``_paths.py``) time every way of making a call over TLS on loopback, each
answer read to its end: the async generator, ``AsyncClient.ask``, the blocking iterator on
each transport, ``Client.ask``, against two floors, one pooled aiohttp ``ClientSession`` and
one pooled ``requests.Session`` (the requests transport's own floor). Each path starts fresh
in every round: its first call is cold, the median of the next ``warm_calls`` is the warm
figure; then as many one-event answers, in a row, give its calls per second.

Where a warm call's time went, and what changed (issue 15). Profiled with cProfile, one warm
one-event call at a time over TLS on loopback (Python 3.11), and timed with the transport
replaced by a canned answer; the floor's own work is a JSON dump, a POST and two
``json.loads``. Figures are per call, on this 2-CPU machine under load, so roughly:

* The event loop turned 9 times per async call against the floor's 3: ``asyncio.wait_for``
  around each body read made a task per read (before 3.12). Reads now return the bytes
  aiohttp already holds at once (``read_nowait``) and wait under ``asyncio.timeout`` on
  3.11+: 3 turns, as the floor.
* The proxy environment: urllib's ``getproxies_environment`` decoded and scanned every
  environment variable twice per request (about 60 µs). It is now consulted only when some
  ``*_proxy`` variable exists. That glance first iterated ``os.environ`` (24 µs with 35
  variables, nearly all of it decoding the names); it now reads the undecoded names that
  CPython keeps on POSIX (3 µs).
* tenacity: setting up and stepping ``AsyncRetrying`` cost about 25-30 µs for the first,
  and nearly always only, attempt. The first attempt now goes without it; tenacity takes
  over from its failure.
* The faces' options: ``Site.for_url`` and checking every keyword, about 22 µs per call,
  now once per distinct keywords (an LRU keyed by the class, its site, ``$OPCHATGPTS_URL``
  and each keyword's type and value): about 3 µs.
* Smaller: the chat id drew 10 ``secrets.choice`` (17 µs, now one draw, 3 µs); messages
  were checked with ``isinstance`` against ``typing`` aliases (now ``collections.abc``) and
  the body's JSON encoder was built per call (now once); the options were copied to hold
  the chat id (now passed along); async streams ran through ``_flat`` over
  ``answer_batches`` (now one generator, ``answer_items``).
* The blocking path on aiohttp: closing a stream read to its end cancelled its finished
  pump, waking the loop thread a second time per call; now one wake-up each way. The pump
  was started with ``run_coroutine_threadsafe``, whose concurrent future cost about 25 µs
  of a bare 60 µs round trip; a plain ``call_soon_threadsafe`` now makes its task. What is
  left is the hand-off itself: the loop thread's wake-up and task start (about 35 µs bare,
  twice that under load), and the consumer's wait for the GIL while the loop thread
  finishes the answer's cleanup after handing over the last batch (the first token cannot
  be read before it). That is most of the gap to the async path.
* 10,000 streams: the connector looked at every pooled connection on each reuse (100
  ``is_closing()`` calls per request); now only when it opens a new one. A waiting call
  kept a frame of ``AiohttpPool.open`` and a copy of its options. ``import opchatgpts``
  imported ``requests`` (about 100 ms, and a few MB of every process's RSS); now the
  requests transport imports it on first use.
* The requests path was at its floor already: a bare ``requests.Session`` spends more in
  ``merge_environment_settings`` (``trust_env``) than the SDK spends of its own.

Left: the SDK's own Python per call (options, checks, building the request, the response
reader, the end event's ``ChatResult``). Timed in a tight loop, the work before the request
is sent is about 70-85 µs against the floor's 10 (the biggest pieces now: the chat id,
6 µs; the faces' cached options, 6 µs; checking the messages, twice, 3 µs each). Timed inside
the benchmark's own loop, the same code takes about twice as long (160 µs against 35), and
with 2,000 short-lived objects made between calls four times as long: between two calls the
network, TLS and the event loop evict what the SDK's code and objects had in the CPU's
caches, so every extra function and object costs more than its tight-loop figure. aiohttp's
part is the same for both (a floor with the SDK's session, timeouts and headers is as fast
as the bare one). With 10,000 streams, the garbage collector takes a fifth of the SDK's
wall time and somewhat less of the floor's (see below); with it off the ratio hardly moves
(3.6 s against 5.3 s): what is left is the SDK's own work, about 170 µs per stream, spread
over building the request, the generator layers and the reader. No single piece is worth a
less clear code path.

The blocking path on aiohttp, measured again (Python 3.11, a quiet machine). The row
"thread hand-off and back, bare" times what a blocking call on the loop thread pays around
its request with no network and no SDK: this thread wakes the loop, a task there hands one
item back; 0.09-0.16 ms here, with 0.5 ms idle between calls as between real ones. A
blocking call does the async path's work and the hand-off on top, and both paths are held to
the same floor's calls per second (≥ 0.8×, which leaves a one-event call 25% over the
floor's 0.6-1.0 ms): the blocking path could pass only if the async path beat its own
target by the whole hand-off, while its own work over the floor is 0.24-0.35 ms a call.
Timestamps inside one warm 16-event blocking call show what it costs beyond the async path:
waking the loop thread (about 45 µs to send the wake-up, 45 µs until the pump starts), the
same work before the request taking twice as long on the loop thread that just woke as in a
running one (185 µs against about 90), and waking the consumer once the items are queued
(about 110 µs). Two changes were tried and dropped, as neither moved the ratios beyond the
noise: handing batches over only when the pump next waits (one wake-up of the consumer,
after the loop thread's cleanup), and ``Client.ask`` as one coroutine behind one concurrent
future.

The 10,000 streams and the garbage collector: a stream waiting for a pooled connection holds
about 68 objects that the collector tracks, against the floor's 48 (five more coroutine
layers: opening the chat, the call's open, its attempt, its send and the transport's open;
the call, its request, its options and limits). Most streams wait, so the collector runs
more often: for 5,000 streams, 462 young collections against 355 and 4 full ones against 2,
0.65-0.71 s against 0.25-0.43 s of a wall time of about 3 s against 2.

Usage: ``python bench/run.py [--quick] [--rounds N] [--strict]``. ``--quick`` runs tiny
sizes to check that the benchmark works; its figures mean nothing. The exit status is 0
unless a row failed to run (or, with ``--strict``, a target was missed).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import _paths
import aiohttp
import trustme
from _floor import floor_text
from _paths import Measure, Target, check, messages_for
from _server import raise_fd_limit, serve

import opchatgpts
from opchatgpts import Opchatgpts

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    rounds: int = 7
    events: int = 20_000  # events in one answer, throughput rows
    repeat: int = 3  # throughput runs of each row per round (the round keeps their median)
    ttft_events: int = 16  # events in one answer, first-token rows
    warm_calls: int = 40  # warm calls per path per round, after the cold one
    rate_calls: int = 60  # warm one-event calls per path per round, calls-per-second rows
    hand_offs: int = 200  # bare thread hand-offs per round
    streams: int = 10_000  # concurrent streams in one process...
    stream_events: int = 20  # ...of this many events each
    bridge_streams: int = 200  # concurrent streams through the bridge (and directly)...
    bridge_events: int = 200  # ...of this many events each
    import_runs: int = 5  # fresh interpreters per import row per round


QUICK = Sizes(
    rounds=2, events=500, repeat=1, warm_calls=3, rate_calls=3, hand_offs=3, streams=20,
    stream_events=20, bridge_streams=20, bridge_events=20, import_runs=1,
)  # fmt: skip


class NotAvailable(Exception):
    """The row's feature does not exist in this version of the SDK."""


@dataclass
class Row:
    """One line of the table: a sample per round, and the ratio to its reference per round."""

    label: str
    unit: str  # "ms", "s", "MB" or "/s" (calls per second)
    versus: str  # what the ratio is taken against
    target: str = ""
    limit: Optional[float] = None  # the target as a number: a ratio, or MB
    at_least: bool = False  # the ratio must be at least ``limit`` (else at most)
    absolute: bool = False  # ``limit`` bounds every sample (MB), not the median ratio
    samples: List[float] = field(default_factory=list)
    ratios: List[float] = field(default_factory=list)
    passed: Optional[bool] = None
    note: str = ""  # "n/a (...)" or "error: ...", in place of figures


# --- throughput: one answer of many events --------------------------------------------------


class Throughput:
    """Each method reads one answer and returns its seconds. The floor and the async
    generator share one event loop, kept across calls, as an application's would be."""

    def __init__(self, url: str, events: int) -> None:
        self.url = url
        self.events = events
        self.messages = messages_for(events)
        self.loop = asyncio.new_event_loop()
        self.session: Optional[aiohttp.ClientSession] = None  # the floor's, on self.loop

    def floor(self) -> float:
        return self.loop.run_until_complete(self._floor())

    async def _floor(self) -> float:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        start = time.perf_counter()
        text = await floor_text(self.session, self.url, self.messages)
        elapsed = time.perf_counter() - start
        check(text, self.events)
        return elapsed

    def async_generator(self) -> float:
        return self.loop.run_until_complete(self._async_generator())

    async def _async_generator(self) -> float:
        start = time.perf_counter()
        parts = []
        async for delta in Opchatgpts.create_async_generator(None, self.messages, url=self.url):
            parts.append(delta)
        text = "".join(parts)
        elapsed = time.perf_counter() - start
        check(text, self.events)
        return elapsed

    def sync_iterator(self, **kwargs: str) -> float:
        start = time.perf_counter()
        try:
            stream = Opchatgpts.create_completion(None, self.messages, url=self.url, **kwargs)
        except TypeError as exc:
            if "transport" in kwargs and "transport" in str(exc):
                raise NotAvailable("this version has no transport= keyword") from None
            raise
        parts = []
        for delta in stream:
            parts.append(delta)
        text = "".join(parts)
        elapsed = time.perf_counter() - start
        check(text, self.events)
        return elapsed

    def ask(self) -> float:
        start = time.perf_counter()
        text = opchatgpts.ask(self.messages, url=self.url)
        elapsed = time.perf_counter() - start
        check(text, self.events)
        return elapsed

    def requests_transport(self) -> float:
        return self.sync_iterator(transport="requests")

    def release(self) -> None:
        """Close the default client's session on this loop, before the first-token rows close
        the default client itself (which cannot close a session on a loop not running)."""
        self.loop.run_until_complete(opchatgpts.aclose())

    def close(self) -> None:
        async def close() -> None:
            if self.session is not None:
                await self.session.close()
            await opchatgpts.aclose()

        self.loop.run_until_complete(close())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


# --- rows measured in fresh processes -------------------------------------------------------


def many_streams(kind: str, url: str, streams: int, events: int) -> dict:
    """Concurrent streams in a fresh process: {"wall", "ok", "streams", "errors", "peak_rss"}.

    ``bridge``: through the OpenAI-compatible bridge, whose process the peak RSS is."""
    args = [kind, url, str(streams), str(events)]
    done = subprocess.run(
        [sys.executable, str(HERE / "_many.py"), *args], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"_many.py {kind} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


IMPORT_TIMER = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"


def import_seconds(modules: str, write_bytecode: bool = False) -> float:
    """Seconds that ``import <modules>`` takes in a fresh interpreter.

    The rows measure imports from cached bytecode, as after ``pip install``; a first run
    with ``write_bytecode`` caches it, even where PYTHONDONTWRITEBYTECODE is set.
    """
    env = dict(os.environ)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_TIMER.format(modules)],
        env=env,
        cwd=HERE,  # not the checkout: the installed package is imported, as a user imports it
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import {modules} failed: {done.stderr.strip()[-500:]}")
    return float(done.stdout)


# --- the rounds -----------------------------------------------------------------------------


def rotated(items: Sequence[T], n: int) -> List[T]:
    n %= len(items)
    return [*items[n:], *items[:n]]


def sample(row: Row, measure: Callable[[], float]) -> Optional[float]:
    """One measurement. A row that cannot run is marked, and skipped from then on."""
    if row.note:
        return None
    gc.collect()
    try:
        return measure()
    except NotAvailable as exc:
        row.note = f"n/a ({exc})"
    except Exception as exc:  # reported in the table; the other rows go on
        row.note = f"error: {type(exc).__name__}: {exc}"[:300]
    return None


@dataclass
class CallPath:
    """One way of making a call, and its rows: first token (or, for ``ask``, the whole
    answer) cold and warm, and calls per second."""

    name: str
    run: Measure
    floor: Optional["CallPath"] = None  # what it is held to (None: it is a floor)
    whole: bool = False  # it hands over the whole answer at once (ask): timed to the end
    warm_limit: Optional[float] = None
    cold: Row = field(init=False)
    warm: Row = field(init=False)
    rate: Row = field(init=False)
    #: The floors' whole-answer rows, the reference of the ``ask`` rows.
    whole_cold: Optional[Row] = field(init=False, default=None)
    whole_warm: Optional[Row] = field(init=False, default=None)

    def __post_init__(self) -> None:
        what = "whole answer" if self.whole else "first token"
        if self.floor is None:
            self.cold = Row(f"{what}, {self.name}, cold", "ms", "floor cold")
            self.warm = Row(f"{what}, {self.name}, warm", "ms", "floor warm")
            self.rate = Row(f"calls/s, {self.name}", "/s", "floor")
            if self.name.endswith("aiohttp"):
                self.whole_cold = Row(f"whole answer, {self.name}, cold", "ms", "floor cold")
                self.whole_warm = Row(f"whole answer, {self.name}, warm", "ms", "floor warm")
            return
        limit = self.warm_limit
        versus = f"{self.floor.name.split()[-1]} floor"
        self.cold = Row(f"{what}, {self.name}, cold", "ms", versus)
        self.warm = Row(f"{what}, {self.name}, warm", "ms", versus, f"≤ {limit:.2f}×" if limit else "", limit)
        self.rate = Row(f"calls/s, {self.name}", "/s", versus, "≥ 0.80×", 0.8, at_least=True)

    def rows(self) -> List[Row]:
        return [r for r in (self.cold, self.whole_cold, self.warm, self.whole_warm, self.rate) if r]

    def references(self) -> List[Tuple[Row, Row]]:
        """(row, the row it is a ratio to), for each of its rows."""
        floor = self.floor or self
        if self.whole:
            cold, warm = floor.whole_cold, floor.whole_warm
            assert cold is not None and warm is not None
        else:
            cold, warm = floor.cold, floor.warm
        pairs = [(self.cold, cold), (self.warm, warm), (self.rate, floor.rate)]
        if self.whole_cold is not None and self.whole_warm is not None:
            pairs += [(self.whole_cold, self.whole_cold), (self.whole_warm, self.whole_warm)]
        return pairs


def call_paths() -> List[CallPath]:
    aio = CallPath("floor: pooled aiohttp", _paths.floor_aiohttp)
    req = CallPath("floor: pooled requests", _paths.floor_requests)
    return [
        aio,
        req,
        CallPath("async generator", _paths.async_generator, aio, warm_limit=1.2),
        CallPath("AsyncClient.ask", _paths.async_client_ask, aio, whole=True, warm_limit=1.2),
        CallPath("blocking iterator on aiohttp", _paths.blocking_iterator("aiohttp"), aio, warm_limit=1.5),
        CallPath("Client.ask", _paths.client_ask, aio, whole=True, warm_limit=1.5),
        CallPath("blocking iterator on requests", _paths.blocking_iterator("requests"), req, warm_limit=1.3),
    ]


class Benchmark:
    def __init__(self, sizes: Sizes, http_url: str, https_url: str, target: Target) -> None:
        self.sizes = sizes
        self.http_url = http_url
        self.https_url = https_url
        self.target = target
        self.paths = call_paths()
        self.bench = Throughput(http_url, sizes.events)
        n = f"{sizes.events:,} events"
        self.floor = Row(f"floor: bare aiohttp, {n}", "ms", "floor")
        self.agen = Row(f"async generator, {n}", "ms", "floor", "≤ 1.25×", 1.25)
        self.sync = Row(f"sync iterator, {n}", "ms", "floor", "≤ 1.60×", 1.6)
        self.ask = Row(f"ask(), {n}", "ms", "floor", "≤ 1.60×", 1.6)
        self.req = Row(f'transport="requests", {n}', "ms", "floor", "≤ 1.60×", 1.6)
        self.hand_off = Row("thread hand-off and back, bare (no network, no SDK)", "ms", "")
        s = f"{sizes.streams:,} streams × {sizes.stream_events} events"
        self.many_floor = Row(f"floor: {s}, wall", "s", "floor")
        self.many_floor_rss = Row(f"floor: {s}, peak RSS", "MB", "floor")
        self.many = Row(f"{s}, wall", "s", "floor", "all, ≤ 1.30×", 1.3)
        self.many_rss = Row(f"{s}, peak RSS", "MB", "floor", "≤ 1.30×", 1.3)
        b = f"{sizes.bridge_streams:,} streams × {sizes.bridge_events} events"
        self.direct = Row(f"SDK direct: {b}, wall", "s", "SDK direct")
        self.direct_rss = Row(f"SDK direct: {b}, peak RSS", "MB", "SDK direct")
        self.bridge = Row(f"bridge: {b}, wall", "s", "SDK direct", "all finish")
        self.bridge_rss = Row(f"bridge: {b}, peak RSS", "MB", "SDK direct", "≤ 250 MB", 250, absolute=True)
        self.import_floor = Row("import aiohttp, tenacity", "ms", "floor")
        self.import_sdk = Row("import opchatgpts", "ms", "floor", "≤ 1.15×", 1.15)

    def rows(self) -> List[Row]:
        return [
            self.floor, self.agen, self.sync, self.ask, self.req,
            *(row for path in self.paths for row in path.rows()),
            self.hand_off,
            self.many_floor, self.many_floor_rss, self.many, self.many_rss,
            self.direct, self.direct_rss, self.bridge, self.bridge_rss,
            self.import_floor, self.import_sdk,
        ]  # fmt: skip

    def run(self) -> List[Row]:
        try:
            self.warm_up()
            for r in range(self.sizes.rounds):
                print(f"round {r + 1}/{self.sizes.rounds}", file=sys.stderr, flush=True)
                self.throughput_round(r)
                self.first_token_round(r)
                self.streams_round(r)
                self.bridge_round(r)
                self.import_round(r)
        finally:
            self.bench.close()
        self.judge()
        return self.rows()

    def warm_up(self) -> None:
        """Connections, the loop thread, code paths, and the bytecode of the import rows."""
        b = self.bench
        for measure in (b.floor, b.async_generator, b.sync_iterator, b.ask, b.requests_transport):
            try:
                measure()
            except Exception:  # the rounds report it
                pass
        for modules in ("aiohttp, tenacity", "opchatgpts"):
            import_seconds(modules, write_bytecode=True)
        self.bench.release()
        for path in self.paths:
            try:
                path.run(self.target, self.sizes.ttft_events, 2)
            except Exception:  # the rounds report it
                pass

    def throughput_round(self, r: int) -> None:
        b = self.bench
        rows = [
            (self.floor, b.floor),
            (self.agen, b.async_generator),
            (self.sync, b.sync_iterator),
            (self.ask, b.ask),
            (self.req, b.requests_transport),
        ]
        got: Dict[str, List[float]] = {row.label: [] for row, _ in rows}
        for _ in range(self.sizes.repeat):
            for row, measure in rotated(rows, r):
                value = sample(row, measure)
                if value is not None:
                    got[row.label].append(value)
        for row, _ in rows:
            if got[row.label]:
                row.samples.append(statistics.median(got[row.label]))

    def first_token_round(self, r: int) -> None:
        """Each path from a fresh start: its first call cold, the next ones warm; then as
        many one-event calls, for calls per second."""
        sizes = self.sizes
        self.bench.release()

        def measure(path: CallPath) -> Callable[[], float]:
            def run() -> float:
                times = path.run(self.target, sizes.ttft_events, 1 + sizes.warm_calls)
                rates = path.run(self.target, 1, 1 + sizes.rate_calls)
                at = 1 if path.whole else 0  # ask hands over the whole answer
                path.warm.samples.append(statistics.median(t[at] for t in times[1:]))
                path.rate.samples.append(sizes.rate_calls / sum(t[1] for t in rates[1:]))
                if path.whole_cold is not None and path.whole_warm is not None:
                    path.whole_cold.samples.append(times[0][1])
                    path.whole_warm.samples.append(statistics.median(t[1] for t in times[1:]))
                return times[0][at]

            return run

        for path in rotated(self.paths, r):
            value = sample(path.cold, measure(path))
            if value is not None:
                path.cold.samples.append(value)
        value = sample(self.hand_off, lambda: _paths.bare_hand_off(sizes.hand_offs))
        if value is not None:
            self.hand_off.samples.append(value)

    def streams_round(self, r: int) -> None:
        pairs = [("sdk", self.many, self.many_rss), ("floor", self.many_floor, self.many_floor_rss)]
        self.concurrent_round(r, pairs, self.sizes.streams, self.sizes.stream_events)

    def bridge_round(self, r: int) -> None:
        """The same streamed requests through the bridge and directly with the SDK."""
        pairs = [("bridge", self.bridge, self.bridge_rss), ("sdk", self.direct, self.direct_rss)]
        self.concurrent_round(r, pairs, self.sizes.bridge_streams, self.sizes.bridge_events)

    def concurrent_round(self, r: int, pairs: List[Tuple[str, Row, Row]], streams: int, events: int) -> None:
        reports: Dict[str, dict] = {}

        def measure(kind: str) -> Callable[[], float]:
            def run() -> float:
                reports[kind] = many_streams(kind, self.http_url, streams, events)
                return float(reports[kind]["wall"])

            return run

        for kind, row, rss_row in rotated(pairs, r):
            value = sample(row, measure(kind))
            if value is None:
                continue
            row.samples.append(value)
            report = reports[kind]
            rss_row.samples.append(report["peak_rss"] / 2**20)
            if report["ok"] != report["streams"]:
                row.note = f"error: {report['ok']}/{report['streams']} finished; {report['errors']}"

    def import_round(self, r: int) -> None:
        pairs = [(self.import_floor, "aiohttp, tenacity"), (self.import_sdk, "opchatgpts")]
        got: Dict[str, List[float]] = {row.label: [] for row, _ in pairs}
        for _ in range(self.sizes.import_runs):
            for row, modules in rotated(pairs, r):
                value = sample(row, lambda modules=modules: import_seconds(modules))
                if value is not None:
                    got[row.label].append(value)
        for row, _ in pairs:
            if got[row.label]:
                row.samples.append(statistics.median(got[row.label]))

    def judge(self) -> None:
        """Ratios within each round, against the reference measured in that round; targets."""
        references = [
            ((self.floor, self.agen, self.sync, self.ask, self.req), self.floor),
            *(((row,), reference) for path in self.paths for row, reference in path.references()),
            ((self.many_floor, self.many), self.many_floor),
            ((self.many_floor_rss, self.many_rss), self.many_floor_rss),
            ((self.direct, self.bridge), self.direct),
            ((self.direct_rss, self.bridge_rss), self.direct_rss),
            ((self.import_floor, self.import_sdk), self.import_floor),
        ]
        for rows, reference in references:
            for row in rows:
                if len(row.samples) == len(reference.samples):
                    row.ratios = [a / b for a, b in zip(row.samples, reference.samples)]
        for row in self.rows():
            if row.note or not row.samples or row.limit is None:
                continue
            if row.absolute:  # a bound on every round
                row.passed = max(row.samples) <= row.limit
            elif row.ratios:
                ratio = statistics.median(row.ratios)
                row.passed = ratio >= row.limit if row.at_least else ratio <= row.limit
        for row in (self.many, self.bridge):  # "all finish"
            if row.samples and not row.note:
                row.passed = row.passed is not False and len(row.samples) == self.sizes.rounds
            if row.note.startswith("error"):
                row.passed = False


# --- the table ------------------------------------------------------------------------------


def figure(row: Row) -> Tuple[str, str]:
    """The median and its ratio, as text."""
    value = statistics.median(row.samples)
    if row.unit == "ms":
        text = f"{value * 1000:.2f} ms" if value < 0.01 else f"{value * 1000:.1f} ms"
    elif row.unit == "s":
        text = f"{value:.2f} s"
    elif row.unit == "/s":
        text = f"{value:,.0f}/s"
    else:
        text = f"{value:.0f} MB"
    ratio = f"{statistics.median(row.ratios):.2f}×" if row.ratios else ""
    return text, ratio


def table(rows: List[Row]) -> Tuple[str, List[str]]:
    """An RST simple table (readable as it is, and pasted as it is into README.rst), and notes."""
    header = ("row", "median", "ratio", "vs", "target", "result")
    lines = []
    notes: List[str] = []
    for row in rows:
        result = {True: "pass", False: "FAIL", None: ""}[row.passed]
        if row.note or not row.samples:
            notes.append(row.note or "no data")
            word = "n/a" if row.note.startswith("n/a") else "error"
            text, ratio, result = f"{word} [{len(notes)}]", "", result or word
        else:
            text, ratio = figure(row)
        lines.append((row.label, text, ratio, row.versus if ratio else "", row.target, result))
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    text = "\n".join([rule, fmt(header), rule, *(fmt(line) for line in lines), rule])
    return text, [f"[{i}] {note}" for i, note in enumerate(notes, 1)]


def environment() -> str:
    return (
        f"opchatgpts {opchatgpts.__version__}, aiohttp {aiohttp.__version__}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )


# --- main -----------------------------------------------------------------------------------


def start_server(cert_chain: str) -> Tuple[BaseProcess, Connection, int, int]:
    """The server process, the pipe that stops it, and its HTTP and HTTPS ports."""
    spawn = multiprocessing.get_context("spawn")  # a clean interpreter, whatever this one holds
    ours, theirs = spawn.Pipe()
    server = spawn.Process(target=serve, args=(theirs, cert_chain), name="bench-server", daemon=True)
    server.start()
    theirs.close()
    if not ours.poll(60):
        server.terminate()
        raise RuntimeError("the benchmark server did not start")
    http_port, https_port = ours.recv()
    return server, ours, http_port, https_port


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that it runs")
    parser.add_argument("--rounds", type=int, help="rounds (default 7; 2 with --quick)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.rounds:
        sizes = replace(sizes, rounds=args.rounds)
    raise_fd_limit()

    ca = trustme.CA()  # a self-signed CA, trusted by this client only
    context = ssl.create_default_context()
    ca.configure_trust(context)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cert_chain, ca_file = str(Path(tmp) / "server.pem"), str(Path(tmp) / "ca.pem")
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(cert_chain)
        ca.cert_pem.write_to_path(ca_file)
        server, pipe, http_port, https_port = start_server(cert_chain)
        try:
            http_url, https_url = f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"
            target = Target(https_url, context, ca_file)
            rows = Benchmark(sizes, http_url, https_url, target).run()
        finally:
            pipe.send("stop")
            server.join(10)
            if server.is_alive():
                server.terminate()
                server.join()

    elapsed = time.perf_counter() - started
    print()
    print(f"opchatgpts benchmark: medians of {sizes.rounds} interleaved rounds ({elapsed:.0f} s)")
    if args.quick:
        print("--quick: tiny sizes, to check that the benchmark runs; the figures mean nothing")
    print(environment())
    print()
    text, notes = table(rows)
    print(text)
    print()
    print("ratio: the median over the rounds of (row / its reference measured in the same round)")
    for note in notes:
        print(note)
    failed = [row for row in rows if not row.note.startswith("n/a") and (row.note or not row.samples)]
    missed = [row for row in rows if row.passed is False]
    if failed:
        print(f"{len(failed)} row(s) could not be measured")
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
