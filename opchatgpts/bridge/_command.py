"""``opchatgpts bridge``: serve a site's chatbot as an OpenAI-compatible API until Ctrl-C.

The first Ctrl-C (or SIGTERM) stops taking connections, gives the answers under way a few
seconds to finish, closes the client and exits 0; a second one ends those answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

from aiohttp import web

from .._cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    client_settings,
    count,
    debug_logging,
    http_url,
    notice,
    positive_seconds,
    report,
)
from .._client import AsyncClient
from .._exceptions import OpchatgptsError, all_sites_failed
from .._site import PUBLIC_URL, URL_ENV, Site, default_url
from ._app import DRAIN_TIMEOUT, create_app, end_open_answers

__all__ = ["main", "build_parser", "API_KEY_ENV"]

#: The environment variable that may hold ``--api-key`` (it then stays out of ``ps``).
API_KEY_ENV = "OPCHATGPTS_BRIDGE_API_KEY"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: How long the server waits for handlers after the answers were ended (seconds).
_HANDLER_TIMEOUT = 2.0


def _port(text: str) -> int:
    port = count(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return port


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``opchatgpts bridge``."""
    parser = argparse.ArgumentParser(
        prog="opchatgpts bridge",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve an AI Engine chatbot as an OpenAI-compatible API (POST /v1/chat/completions,\n"
        "GET /v1/models) until Ctrl-C, so that any OpenAI client or tool can talk to it.",
        epilog="examples:\n"
        "  opchatgpts bridge --url https://example.com\n"
        "  opchatgpts bridge --page https://example.com/chat/ --port 8001 --api-key s3cret\n"
        "then point a client at it:\n"
        "  openai.OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='s3cret')\n\n"
        "The model a request names is echoed, not used: the site's bot settings choose the model.\n"
        "Ctrl-C (or SIGTERM) stops it: answers under way get a few seconds to finish; a second\n"
        "Ctrl-C ends them at once.",
    )
    site = parser.add_argument_group("site")
    where = site.add_mutually_exclusive_group()
    where.add_argument(
        "--url", action="append", metavar="SITE",
        help=f"the site root (default: ${URL_ENV}, else {PUBLIC_URL}, which is offline now)",
    )  # fmt: skip
    where.add_argument(
        "--page", action="append", metavar="URL",
        help="a page showing the chatbot: read the bot's settings from it",
    )  # fmt: skip
    site.add_argument("--bot-id", help="the chatbot id (default: 'default'; with --page, picks a bot)")
    site.add_argument("--custom-id", help="the id of a chatbot defined inline in a shortcode")
    site.add_argument("--context-id", type=int, metavar="N", help="the post id of the chatbot page")
    net = parser.add_argument_group("connection to the site")
    net.add_argument("--proxy", metavar="URL", help="an HTTP proxy, e.g. http://user:pass@host:3128")
    net.add_argument(
        "--timeout", type=positive_seconds, metavar="SECONDS", help="connect and idle-read timeout (10/60)"
    )
    net.add_argument("--retries", type=count, metavar="N", help="retries of connection setup (2)")
    serve = parser.add_argument_group("the API")
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"the address to listen on (default {DEFAULT_HOST})"
    )
    serve.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT}; 0: any free one)"
    )
    serve.add_argument(
        "--api-key", metavar="KEY", default=os.environ.get(API_KEY_ENV) or None,
        help=f"accept only requests with 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}; "
        "unset, any key is accepted)",
    )  # fmt: skip
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, every request, tracebacks"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``opchatgpts bridge`` with ``argv`` (the arguments after ``bridge``); return the exit code."""
    try:
        options = build_parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse has printed the help or the usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handlers = _verbose_logging() if options.verbose else []
    try:
        return asyncio.run(_run(options))
    except KeyboardInterrupt:  # where signal handlers cannot be installed (Windows)
        return EXIT_OK
    except Exception as exc:
        return report(exc, options.verbose)
    finally:
        for logger, handler in handlers:
            logger.removeHandler(handler)


def _verbose_logging() -> List[Any]:
    handler = debug_logging()
    access = logging.getLogger("aiohttp.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    return [(logging.getLogger("opchatgpts"), handler), (access, handler)]


async def _client(options: argparse.Namespace) -> AsyncClient:
    """The client the site and connection options ask for."""
    settings = client_settings(options)
    if options.page:
        pages = [http_url("--page", page) for page in options.page]
        if len(pages) == 1:
            return await AsyncClient.from_page(pages[0], **settings)
        return AsyncClient(sites=await _sites_on(pages, settings), **settings)
    urls = [http_url("--url", url) for url in options.url or [default_url()]]
    return AsyncClient(sites=urls, **settings)


async def _sites_on(pages: List[str], settings: Dict[str, Any]) -> List[Site]:
    """The sites of several chatbot pages, tried in order (failover); a page that cannot be
    read is left out, and said so, unless none can."""
    sites: List[Site] = []
    failures: List[Tuple[str, Exception]] = []
    for page in pages:
        try:
            client = await AsyncClient.from_page(page, **settings)
        except OpchatgptsError as exc:
            failures.append((page, exc))
            notice(f"opchatgpts: --page {page} left out: {type(exc).__name__}: {exc}")
            continue
        sites.append(client.site)
        await client.aclose()
    if not sites:
        raise all_sites_failed(failures)
    return sites


async def _run(options: argparse.Namespace) -> int:
    client = await _client(options)
    try:
        app = create_app(client, api_key=options.api_key)
        access_log = logging.getLogger("aiohttp.access") if options.verbose else None
        runner = web.AppRunner(
            app, handle_signals=False, access_log=access_log, shutdown_timeout=_HANDLER_TIMEOUT
        )
        await runner.setup()
        stop = asyncio.Event()

        def on_signal() -> None:
            if not stop.is_set():
                notice(
                    f"stopping: answers under way get {DRAIN_TIMEOUT:g} s to finish (Ctrl-C again ends them)"
                )
                stop.set()
            else:
                end_open_answers(app)

        with _signals(on_signal):
            try:
                try:
                    await web.TCPSite(runner, options.host, options.port).start()
                except OSError as exc:
                    where = f"{options.host}:{options.port}"
                    notice(f"opchatgpts: cannot listen on {where}: {exc.strerror or exc}")
                    return EXIT_FAILED
                _announce(runner, client, options)
                await stop.wait()
            finally:
                await runner.cleanup()  # stops listening, drains the answers (create_app)
    finally:
        await client.aclose()
    notice("bridge stopped")
    return EXIT_OK


@contextmanager
def _signals(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` on SIGINT and SIGTERM instead of raising or dying, in the block."""
    loop = asyncio.get_running_loop()
    installed = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, callback)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
            continue
        installed.append(number)
    try:
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)


def _announce(runner: web.AppRunner, client: AsyncClient, options: argparse.Namespace) -> None:
    host, port = runner.addresses[0][:2]
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}/v1"
    site = client.site
    bot = site.custom_id or site.bot_id
    key = "your key" if options.api_key else "any"
    print(
        f"OpenAI-compatible API for {site.url} (bot {bot!r}) at {base}\n"
        f"  try: openai.OpenAI(base_url={base!r}, api_key={key!r})\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    if not options.api_key and not _loopback(options.host):
        notice(
            f"warning: listening on {options.host} without --api-key: "
            "anyone who reaches this port can use the bot"
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

