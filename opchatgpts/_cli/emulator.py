"""``opchatgpts serve`` and ``opchatgpts demo``: the built-in emulator, as a server or for one
answer."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from typing import TYPE_CHECKING

from .answer import one_shot
from .common import EXIT_FAILED, EXIT_OK, notice
from .parsers import DEMO_PROMPT, parser_for

if TYPE_CHECKING:
    from ..emulator import Emulator


def serve(options: argparse.Namespace) -> int:
    """``opchatgpts serve``: run the emulator in the foreground until Ctrl-C."""
    from ..emulator import Emulator

    if options.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    emulator = Emulator(options.generation, delta_delay=options.delay)
    try:
        asyncio.run(_serve_until_cancelled(emulator, options.port, options.verbose))
    except KeyboardInterrupt:
        notice("emulator stopped")
    except OSError as exc:
        notice(f"opchatgpts: cannot listen on 127.0.0.1:{options.port}: {exc.strerror or exc}")
        return EXIT_FAILED
    return EXIT_OK


async def _serve_until_cancelled(emulator: "Emulator", port: int, access_log: bool) -> None:
    from aiohttp import web

    log = logging.getLogger("aiohttp.access") if access_log else None
    runner = web.AppRunner(emulator.make_app(), shutdown_timeout=1.0, access_log=log)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        page = url + emulator.page_path
        # Only the page tells a client the nonce of the 'nonce' generation.
        site = f"--page {page}" if emulator.generation == "nonce" else f"--url {url}"
        notice(f"AI Engine emulator ({emulator.generation} generation) at {url}\n"
                f"  chatbot page: {page}\n"
                f"  try: opchatgpts {site} 'Hello there'\n"
                "Ctrl-C stops it.")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def demo(options: argparse.Namespace) -> int:
    """``opchatgpts demo``: the emulator in-process, and one streamed answer from it."""
    from ..testing import serve_emulator

    prompt = " ".join(options.prompt) or DEMO_PROMPT
    with serve_emulator("open", delta_delay=0.05) as site:
        argv = ["--url", site.url, prompt]
        notice(f"emulator: {site.url}  (AI Engine 1.9.x, open generation)\n"
                f"$ opchatgpts {' '.join(shlex.quote(a) for a in argv)}")
        return one_shot(parser_for(None).parse_args(argv), read_stdin=False)
