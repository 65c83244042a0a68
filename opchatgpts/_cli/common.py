"""What every command shares: exit codes, option types, the site and connection options, the
client they ask for, and how an error is reported."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from typing import Any, Dict, List, Tuple

from .._client import Client
from .._exceptions import (
        DiscoveryError,
    InvalidMessagesError,
    InvalidMessagesTypeError,
    OpchatgptsError,
    all_sites_failed,
)
from .._protocol.request import check_messages
from .._site import PUBLIC_URL, URL_ENV, Site, default_url

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECTION, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: What each exit code of the command means.
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the server refused the query or the answer broke",
    EXIT_USAGE: "usage error (bad option, no prompt, unreadable --history file)",
    EXIT_CONNECTION: "connection failed or timed out",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

SYSTEM_HELP = (
    "add TEXT as a system message before the conversation. AI Engine 2.x and 3.x pass it to the model "
    "as a second system message, after the bot's own instructions (which stay in force); 1.9.x (what "
    "opchatgpts.net ran, the emulator's 'open' generation) overwrites it with the bot's instructions, "
    "so there it has no effect"
)

HISTORY_HELP = (
    "earlier turns to go on from: a JSON list of {\"role\", \"content\"} messages, as /save writes "
    "them. Every version passes them to the model after the bot's instructions, but only the last "
    "maxMessages of them (15 by default; 2.x and 3.x keep the first one too). A system message in it "
    "fares as --system does. End it with an assistant turn: 1.9.x drops a trailing user turn"
)


class UsageError(Exception):
    """A mistake in the command line or in a file it names (exit code 2)."""


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive: 0")
    return value


def json_object(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"temperature\": 0.2}'")
    return value


def count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {text!r}")
    return int(text)


def site_options(parser: argparse.ArgumentParser) -> None:
    site = parser.add_argument_group("site")
    where = site.add_mutually_exclusive_group()
    where.add_argument(
        "--url", action="append",
        help=f"the site root (default: ${URL_ENV}, else {PUBLIC_URL}, which is offline now). "
        "Give it several times for failover: the sites are tried in that order",
    )
    where.add_argument(
        "--page", metavar="URL", action="append",
        help="a page showing the chatbot: read the bot's settings from it (several times: failover)",
    )
    site.add_argument("--bot-id", help="the chatbot id (default: 'default'; with --page, picks a bot)")
    site.add_argument("--custom-id", help="the id of a chatbot defined inline in a shortcode")
    site.add_argument("--context-id", type=int, metavar="N", help="the post id of the chatbot page")
    site.add_argument(
        "--rest-url", metavar="URL",
        help="the WordPress REST root when it is not SITE/wp-json (https://host/blog/wp-json, "
        "https://host/?rest_route=/)",
    )
    site.add_argument("--referer", metavar="URL", help="the chatbot page, sent as Referer (and its origin)")
    site.add_argument(
        "--extra", metavar="JSON", type=json_object,
        help="extra keys for the request body, merged by the plugin over the bot's settings, "
        'e.g. \'{"temperature": 0.2}\'',
    )
    net = parser.add_argument_group("connection")
    net.add_argument(
        "--proxy", metavar="URL",
        help="an HTTP or SOCKS proxy, e.g. http://user:pass@host:3128 or socks5h://host:1080 "
        "(default: $HTTPS_PROXY / $HTTP_PROXY / $ALL_PROXY, less $NO_PROXY)",
    )
    net.add_argument(
        "--no-env", dest="trust_env", action="store_false",
        help="ignore the proxy and CA bundle settings of the environment",
    )
    net.add_argument(
        "--timeout", type=positive_seconds, metavar="SECONDS", help="connect and idle-read timeout (10/60)"
    )
    net.add_argument("--retries", type=count, metavar="N", help="retries of connection setup (2)")
    talk = parser.add_argument_group("conversation")
    talk.add_argument("--system", metavar="TEXT", help=SYSTEM_HELP)
    talk.add_argument("--history", metavar="FILE", help=HISTORY_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")


def file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file", metavar="PATH", action="append",
        help="send a file (an image) with the prompt; give it several times for several files "
        "(AI Engine 2.4.4 and later take several per message, earlier versions one)",
    )


def debug_logging() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("opchatgpts")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, (UsageError, InvalidMessagesError, InvalidMessagesTypeError)):
        return EXIT_USAGE
    if isinstance(exc, DiscoveryError):
        return EXIT_FAILED
    # The connection could not be set up, broke mid-answer, or went quiet: worth a retry.
    if isinstance(exc, OpchatgptsError) and isinstance(exc, (ConnectionError, TimeoutError)):
        return EXIT_CONNECTION
    return EXIT_FAILED


def report(exc: BaseException, verbose: bool) -> int:
    """Print one line about ``exc`` (a traceback too with -v); return its exit code."""
    if verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = " ".join(str(exc).split())
    kind = "error" if isinstance(exc, UsageError) else type(exc).__name__
    print(f"opchatgpts: {kind}: {message}" if message else f"opchatgpts: {kind}", file=sys.stderr)
    return exit_code(exc)


def http_url(option: str, value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise UsageError(f"{option} must be an http:// or https:// URL, not {value!r}")
    return value


def proxy_url(value: str) -> str:
    if not value.lower().startswith(("http://", "https://", "socks4://", "socks5://", "socks5h://")):
        raise UsageError(f"--proxy must be an http://, https://, socks4://, socks5:// or socks5h:// URL, "
                         f"not {value!r}")
    return value


def client_settings(options: argparse.Namespace) -> Dict[str, Any]:
    """The client keywords the site and connection options ask for (a command may lack some
    of the options)."""
    given = vars(options)
    settings: Dict[str, Any] = {}
    if given.get("timeout") is not None:
        settings["timeout"] = given["timeout"]
    if given.get("retries") is not None:
        settings["max_retries"] = given["retries"]
    if given.get("proxy"):
        settings["proxy"] = proxy_url(given["proxy"])
    if given.get("trust_env") is False:
        settings["trust_env"] = False
    for name in ("bot_id", "custom_id"):
        if given.get(name):
            settings[name] = given[name]
    if given.get("context_id") is not None:
        settings["context_id"] = given["context_id"]
    for name in ("rest_url", "referer"):
        if given.get(name):
            settings[name] = http_url("--" + name.replace("_", "-"), given[name])
    if given.get("extra"):
        settings["extra_body"] = given["extra"]
    return settings


def client_for(options: argparse.Namespace) -> Client:
    """The client the site and connection options ask for."""
    settings = client_settings(options)
    if options.page:
        pages = [http_url("--page", page) for page in options.page]
        if len(pages) == 1:
            return Client.from_page(pages[0], **settings)
        return Client(sites=sites_on(pages, settings), **settings)
    urls = [http_url("--url", url) for url in options.url or [default_url()]]
    return Client(sites=urls, **settings)


def sites_on(pages: List[str], settings: Dict[str, Any]) -> List[Site]:
    """The sites of several chatbot pages; a page that cannot be read is left out (and
    said so), unless none can."""
    sites: List[Site] = []
    failures: List[Tuple[str, Exception]] = []
    for page in pages:
        try:
            with Client.from_page(page, **settings) as client:
                sites.append(client.site)
        except OpchatgptsError as exc:
            failures.append((page, exc))
            notice(f"opchatgpts: --page {page} left out: {type(exc).__name__}: {exc}")
    if not sites:
        raise all_sites_failed(failures)
    return sites


def load_history(path: str) -> List[Dict[str, str]]:
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--history {path}: {exc}") from None
    if not isinstance(data, list):
        raise UsageError(f"--history {path}: expected a JSON list of messages")
    try:
        return [{"role": m["role"], "content": m["content"]} for m in check_messages(data)]
    except (InvalidMessagesError, InvalidMessagesTypeError) as exc:
        raise UsageError(f"--history {path}: {exc}") from None


def opening_messages(options: argparse.Namespace) -> List[Dict[str, str]]:
    """The messages before the user's first turn: --system, then --history."""
    messages = [{"role": "system", "content": options.system}] if options.system else []
    if options.history:
        messages += load_history(options.history)
    return messages


def write(text: str) -> None:
    out = sys.stdout
    encoding = getattr(out, "encoding", None) or "utf-8"
    # An answer may hold characters the terminal's encoding lacks; show them as '?'.
    out.write(text.encode(encoding, "replace").decode(encoding))
    out.flush()


def notice(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
