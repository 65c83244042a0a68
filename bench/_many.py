"""Many concurrent streams in one fresh process; prints wall time and peak RSS as JSON.

Usage: ``python _many.py {floor,sdk} URL STREAMS EVENTS``. Run by ``run.py`` in a
subprocess, so that the peak RSS is this workload's alone.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Awaitable, Callable, List

from _server import expected_text, raise_fd_limit


def peak_rss_bytes() -> int:
    """This process's peak resident set size.

    On Linux, the high-water mark of this program's own memory (``VmHWM``): ``ru_maxrss``
    would also count the parent's memory, which the child shared between fork and exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # not on Unix: the current RSS is the best we have
        import psutil

        return int(psutil.Process().memory_info().rss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


async def _run(kind: str, url: str, streams: int, events: int) -> dict:
    messages = [{"role": "user", "content": str(events)}]
    closers: List[Callable[[], Awaitable[None]]] = []
    if kind == "sdk":
        from opchatgpts import Opchatgpts, aclose

        closers.append(aclose)

        async def one() -> str:
            parts = []
            async for delta in Opchatgpts.create_async_generator(None, messages, url=url):
                parts.append(delta)
            return "".join(parts)

    else:
        import aiohttp
        from _floor import floor_text

        session = aiohttp.ClientSession()
        closers.append(session.close)

        async def one() -> str:
            return await floor_text(session, url, messages)

    try:
        start = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(streams)), return_exceptions=True)
        wall = time.perf_counter() - start
    finally:
        for close in closers:
            await close()
    expected = expected_text(events)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return {
        "wall": wall,
        "ok": sum(1 for r in results if r == expected),
        "streams": streams,
        "errors": errors[:3],
    }


def main() -> None:
    kind, url, streams, events = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    raise_fd_limit()
    report = asyncio.run(_run(kind, url, streams, events))
    report["peak_rss"] = peak_rss_bytes()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
