"""Many concurrent streams in one fresh process; prints wall time and peak RSS as JSON.

Usage: ``python _many.py {floor,sdk,bridge} URL STREAMS EVENTS``. Run by ``run.py`` in a
subprocess, so that the peak RSS is this workload's alone.

``bridge`` serves the OpenAI-compatible bridge in front of URL in this process, and makes
the streamed requests from another one (``_many.py bridge-clients BRIDGE_URL ...``, a bare
aiohttp reader of the chunks): the wall time is that process's, the peak RSS the bridge's.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Awaitable, Callable, Dict, List

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

    elif kind == "bridge-clients":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        closers.append(session.close)
        body = {"model": "bench", "messages": messages, "stream": True}

        async def one() -> str:
            return await openai_stream_text(session, url + "/v1/chat/completions", body)

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


async def openai_stream_text(session: Any, url: str, body: Dict[str, Any]) -> str:
    """The text of one streamed chat completion, read as a lean OpenAI client would."""
    parts = []
    done = False
    async with session.post(url, json=body) as response:
        response.raise_for_status()
        rest = b""
        async for chunk in response.content.iter_any():
            lines, _, rest = (rest + chunk).rpartition(b"\n")
            for line in lines.split(b"\n"):
                if line.startswith(b"data: {"):
                    choices = json.loads(line[6:])["choices"]
                    if choices and choices[0]["delta"].get("content"):
                        parts.append(choices[0]["delta"]["content"])
                elif line == b"data: [DONE]":
                    done = True
    if not done:
        raise RuntimeError("the stream ended without [DONE]")
    return "".join(parts)


async def _through_bridge(url: str, streams: int, events: int) -> dict:
    """Serve the bridge in front of ``url``; run the clients in another process."""
    from aiohttp import web

    import opchatgpts
    from opchatgpts.bridge import create_app

    async with opchatgpts.AsyncClient(url=url) as client:
        runner = web.AppRunner(create_app(client), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
            bridge = f"http://127.0.0.1:{runner.addresses[0][1]}"
            clients = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "bridge-clients", bridge, str(streams), str(events),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await clients.communicate()
            if clients.returncode != 0:
                raise RuntimeError(f"the clients failed: {err.decode(errors='replace')[-500:]}")
            report: dict = json.loads(out.decode().strip().splitlines()[-1])
            report.pop("peak_rss", None)  # the clients'; the bridge's is this process's
            return report
        finally:
            await runner.cleanup()


def main() -> None:
    kind, url, streams, events = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    raise_fd_limit()
    if kind == "bridge":
        report = asyncio.run(_through_bridge(url, streams, events))
    else:
        report = asyncio.run(_run(kind, url, streams, events))
    report["peak_rss"] = peak_rss_bytes()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
