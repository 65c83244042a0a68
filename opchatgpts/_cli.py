"""The ``opchatgpts`` command: one-shot answers, an interactive chat, and the emulator as a server.

Only the answer goes to stdout; notices, the spinner and errors go to stderr. The exit code
tells a script what happened (see ``EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import shlex
import shutil
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, TextIO, Tuple

from ._client import Client
from ._conversation import Conversation
from ._exceptions import (
    AllSitesFailedError,
    DiscoveryError,
    InvalidMessagesError,
    InvalidMessagesTypeError,
    OpchatgptsError,
)
from ._models import LiveEvent, TextDelta
from ._protocol.request import check_messages
from ._site import PUBLIC_URL, URL_ENV, Site, default_url
from ._version import __version__

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["main", "EXIT_CODES"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECTION, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: What each exit code of the command means.
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the server refused the query or the answer broke",
    EXIT_USAGE: "usage error (bad option, no prompt, unreadable --history file)",
    EXIT_CONNECTION: "connection failed or timed out",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
COMMANDS = ("chat", "serve", "demo", "bridge")
DEMO_PROMPT = "Hello from the opchatgpts demo, streamed token by token"
CHAT_HELP = (
    "/attach PATH sends a file (an image) with your next message, /reset starts anew (keeping "
    "--system), /save FILE writes the conversation as JSON, /exit leaves"
)

_SYSTEM_HELP = (
    "add TEXT as a system message before the conversation. AI Engine 2.x and 3.x pass it to the model "
    "as a second system message, after the bot's own instructions (which stay in force); 1.9.x (what "
    "opchatgpts.net ran, the emulator's 'open' generation) overwrites it with the bot's instructions, "
    "so there it has no effect"
)
_HISTORY_HELP = (
    "earlier turns to go on from: a JSON list of {\"role\", \"content\"} messages, as /save writes "
    "them. Every version passes them to the model after the bot's instructions, but only the last "
    "maxMessages of them (15 by default; 2.x and 3.x keep the first one too). A system message in it "
    "fares as --system does. End it with an assistant turn: 1.9.x drops a trailing user turn"
)


class UsageError(Exception):
    """A mistake in the command line or in a file it names (exit code 2)."""


# -- the command line -------------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive: 0")
    return value


def _json_object(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"temperature\": 0.2}'")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {text!r}")
    return int(text)


def _site_options(parser: argparse.ArgumentParser) -> None:
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
        "--extra", metavar="JSON", type=_json_object,
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
        "--timeout", type=_positive_seconds, metavar="SECONDS", help="connect and idle-read timeout (10/60)"
    )
    net.add_argument("--retries", type=_count, metavar="N", help="retries of connection setup (2)")
    talk = parser.add_argument_group("conversation")
    talk.add_argument("--system", metavar="TEXT", help=_SYSTEM_HELP)
    talk.add_argument("--history", metavar="FILE", help=_HISTORY_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")


def _file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file", metavar="PATH", action="append",
        help="send a file (an image) with the prompt; give it several times for several files "
        "(AI Engine 2.4.4 and later take several per message, earlier versions one)",
    )


def _parser(command: Optional[str]) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    if command == "chat":
        parser = argparse.ArgumentParser(
            prog="opchatgpts chat", formatter_class=raw,
            description="Chat with a site's bot, one conversation, in your terminal.",
            epilog=f"{CHAT_HELP}.\nCtrl-C stops the current answer, Ctrl-D exits.\n"
            "Start a line with // to send a line that starts with /.\n"
            "Leaving exits 0, or with the code of the last turn if it failed (see opchatgpts --help).",
        )
        _site_options(parser)
    elif command == "serve":
        parser = argparse.ArgumentParser(
            prog="opchatgpts serve",
            description="Run the built-in AI Engine emulator on 127.0.0.1 until Ctrl-C, to try "
            "everything offline. It answers 'Echo: <your message>'.",
        )
        parser.add_argument("--port", type=_count, default=8080, help="the port (default 8080; 0: any free)")
        parser.add_argument(
            "--generation", choices=("open", "nonce", "session"), default="open",
            help="the plugin generation to play: open (1.9.x), nonce (2.0-2.4.3), session (2.4.4+, 3.x)",
        )
        parser.add_argument(
            "--delay", type=_seconds, default=0.05, metavar="SECONDS", help="time per streamed word (0.05)"
        )
        parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    elif command == "demo":
        parser = argparse.ArgumentParser(
            prog="opchatgpts demo", description="Start the emulator and stream one answer from it."
        )
        parser.add_argument("prompt", nargs="*", help=f"the question (default: {DEMO_PROMPT!r})")
    else:
        codes = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
        parser = argparse.ArgumentParser(
            prog="opchatgpts", formatter_class=raw,
            usage="opchatgpts [options] [PROMPT ...]\n"
            "       opchatgpts chat [options]\n"
            "       opchatgpts serve [--port N] [--generation {open,nonce,session}]\n"
            "       opchatgpts demo [PROMPT ...]\n"
            "       opchatgpts bridge [--url SITE | --page URL] [--port N] [--api-key KEY]",
            description="Ask an AI Engine chatbot (a WordPress site) and stream its answer to stdout.\n"
            "The prompt comes from the arguments, from stdin, or both: the arguments, a blank\n"
            "line, then the piped text. (To ask the word 'chat' itself: opchatgpts -- chat)",
            epilog="commands:\n  chat   an interactive conversation (opchatgpts chat --help)\n"
            "  serve  run the emulator, an offline stand-in site (opchatgpts serve --help)\n"
            "  demo   start the emulator and stream one answer from it\n"
            "  bridge serve the chatbot as an OpenAI-compatible API (opchatgpts bridge --help)\n\n"
            f"exit codes:\n{codes}\n\nexamples:\n"
            "  opchatgpts serve &\n"
            "  opchatgpts --url http://127.0.0.1:8080 'What is two plus two?'\n"
            "  opchatgpts --url https://example.com --file cat.png 'What is in this image?'\n"
            "  git diff | opchatgpts --url https://example.com 'Review this diff'\n"
            "  opchatgpts --page https://example.com/chat/ --json 'Hi' | jq -r .reply",
        )
        parser.add_argument("prompt", nargs="*", help="the question; several words are joined by spaces")
        _site_options(parser)
        _file_option(parser)
        out = parser.add_argument_group("output")
        out.add_argument("--no-stream", action="store_true", help="ask the server for one JSON answer")
        out.add_argument("--json", action="store_true", help="print one JSON object: reply, usage, chatId")
        parser.add_argument("--version", action="version", version=f"opchatgpts {__version__}")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``opchatgpts`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args and args[0] in COMMANDS else None
    if command == "bridge":  # its own parser and event loop, in opchatgpts.bridge
        from .bridge._command import main as bridge

        return bridge(args[1:])
    try:
        options = _parser(command).parse_args(args[1:] if command else args)
    except SystemExit as exc:  # argparse has printed the help or the usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    verbose = bool(getattr(options, "verbose", False))
    handler = _debug_logging() if verbose and command != "serve" else None
    run: Callable[[argparse.Namespace], int] = {
        "chat": _chat, "serve": _serve, "demo": _demo,
    }.get(command or "", _one_shot)
    try:
        return run(options)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`). Point stdout at /dev/null so that the flush at
        # exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:
        return _report(exc, verbose)
    finally:
        if handler is not None:
            logging.getLogger("opchatgpts").removeHandler(handler)


def _debug_logging() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("opchatgpts")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, (UsageError, InvalidMessagesError, InvalidMessagesTypeError)):
        return EXIT_USAGE
    if isinstance(exc, DiscoveryError):
        return EXIT_FAILED
    # The connection could not be set up, broke mid-answer, or went quiet: worth a retry.
    if isinstance(exc, OpchatgptsError) and isinstance(exc, (ConnectionError, TimeoutError)):
        return EXIT_CONNECTION
    return EXIT_FAILED


def _report(exc: BaseException, verbose: bool) -> int:
    """Print one line about ``exc`` (a traceback too with -v); return its exit code."""
    if verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = " ".join(str(exc).split())
    kind = "error" if isinstance(exc, UsageError) else type(exc).__name__
    print(f"opchatgpts: {kind}: {message}" if message else f"opchatgpts: {kind}", file=sys.stderr)
    return _exit_code(exc)


# -- talking to the site ----------------------------------------------------------------------


def _http_url(option: str, value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise UsageError(f"{option} must be an http:// or https:// URL, not {value!r}")
    return value


def _proxy_url(value: str) -> str:
    if not value.lower().startswith(("http://", "https://", "socks4://", "socks5://", "socks5h://")):
        raise UsageError(f"--proxy must be an http://, https://, socks4://, socks5:// or socks5h:// URL, "
                         f"not {value!r}")
    return value


def _client(options: argparse.Namespace) -> Client:
    """The client the site and connection options ask for."""
    settings: Dict[str, Any] = {}
    if options.timeout is not None:
        settings["timeout"] = options.timeout
    if options.retries is not None:
        settings["max_retries"] = options.retries
    if options.proxy:
        settings["proxy"] = _proxy_url(options.proxy)
    if not options.trust_env:
        settings["trust_env"] = False
    if options.bot_id:
        settings["bot_id"] = options.bot_id
    if options.custom_id:
        settings["custom_id"] = options.custom_id
    if options.context_id is not None:
        settings["context_id"] = options.context_id
    if options.rest_url:
        settings["rest_url"] = _http_url("--rest-url", options.rest_url)
    if options.referer:
        settings["referer"] = _http_url("--referer", options.referer)
    if options.extra:
        settings["extra_body"] = options.extra
    if options.page:
        pages = [_http_url("--page", page) for page in options.page]
        if len(pages) == 1:
            return Client.from_page(pages[0], **settings)
        return Client(sites=_sites_on(pages, settings), **settings)
    urls = [_http_url("--url", url) for url in options.url or [default_url()]]
    return Client(sites=urls, **settings)


def _sites_on(pages: List[str], settings: Dict[str, Any]) -> List[Site]:
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
            _notice(f"opchatgpts: --page {page} left out: {type(exc).__name__}: {exc}")
    if not sites:
        raise AllSitesFailedError(failures)
    return sites


def _load_history(path: str) -> List[Dict[str, str]]:
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


def _opening(options: argparse.Namespace) -> List[Dict[str, str]]:
    """The messages before the user's first turn: --system, then --history."""
    messages = [{"role": "system", "content": options.system}] if options.system else []
    if options.history:
        messages += _load_history(options.history)
    return messages


def _write(text: str) -> None:
    out = sys.stdout
    encoding = getattr(out, "encoding", None) or "utf-8"
    # An answer may hold characters the terminal's encoding lacks; show them as '?'.
    out.write(text.encode(encoding, "replace").decode(encoding))
    out.flush()


class _Spinner:
    """Shows on a terminal that the answer is on its way, until its first token arrives."""

    def __init__(self, stream: TextIO, label: str = "waiting for the answer") -> None:
        self.label = label
        self._stream = stream
        self._stopped = threading.Event()
        utf8 = (getattr(stream, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self._frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" if utf8 else "-\\|/"
        self._thread = threading.Thread(target=self._spin, name="opchatgpts-spinner", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        if self._stopped.wait(0.1):  # a quick answer needs no spinner
            return
        # A terminal that reports no size has 0 columns before Python 3.11; take 80 then, as 3.11+ does.
        width = max((shutil.get_terminal_size().columns or 80) - 3, 10)
        for frame in itertools.cycle(self._frames):
            self._stream.write(f"\r{frame} {self.label[:width]}\033[K")
            self._stream.flush()
            if self._stopped.wait(0.08):
                break
        self._stream.write("\r\033[K")
        self._stream.flush()

    def stop(self) -> None:
        """Erase the spinner; it does not come back."""
        self._stopped.set()
        self._thread.join()


def _relay(stream: Iterable[Any], *, echo: bool, spin: bool) -> None:
    """Copy the answer's text to stdout as it arrives, with a spinner on stderr meanwhile."""
    spinner = _Spinner(sys.stderr) if spin else None
    last = ""
    try:
        for item in stream:
            if isinstance(item, LiveEvent):
                if spinner is not None and item.subtype == "status" and item.visibility != "hidden":
                    spinner.label = " ".join(str(item.data).split())
                continue
            text = item.text if isinstance(item, TextDelta) else item if isinstance(item, str) else ""
            if text and echo:
                if spinner is not None:
                    spinner.stop()
                _write(text)
                last = text
    finally:
        if spinner is not None:
            spinner.stop()
        if last and not last.endswith("\n"):
            _write("\n")


def _spin(options: argparse.Namespace) -> bool:
    return sys.stderr is not None and sys.stderr.isatty() and not options.verbose


# -- one-shot ---------------------------------------------------------------------------------


def _prompt(words: Sequence[str], read_stdin: bool) -> str:
    prompt = " ".join(words).strip()
    piped = ""
    if read_stdin and sys.stdin is not None and not sys.stdin.isatty():
        piped = sys.stdin.read().rstrip()
    text = f"{prompt}\n\n{piped}" if prompt and piped.strip() else prompt or piped
    if not text.strip():
        raise UsageError("no prompt: give it as arguments or pipe it in (or run `opchatgpts chat`)")
    return text


def _one_shot(options: argparse.Namespace, read_stdin: bool = True) -> int:
    """``opchatgpts [options] PROMPT``: stream one answer to stdout."""
    text = _prompt(options.prompt, read_stdin)
    messages = [*_opening(options), {"role": "user", "content": text}]
    with _client(options) as client, client.stream_events(
        messages, stream=not options.no_stream, files=options.file
    ) as stream:
        _relay(stream, echo=not options.json, spin=_spin(options))
        result = stream.until_done()
    if options.json:
        usage = dict(result.usage) if result.usage is not None else None
        answer = {"reply": result.reply, "usage": usage, "chatId": result.chat_id}
        _write(json.dumps(answer, ensure_ascii=False) + "\n")
    return EXIT_OK


# -- chat -------------------------------------------------------------------------------------


def _read_line(interactive: bool) -> str:
    if not interactive:
        return input()
    if sys.stdout.isatty():
        return input("you> ")
    sys.stderr.write("you> ")  # stdout is for answers only
    sys.stderr.flush()
    return input()


def _notice(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _chat(options: argparse.Namespace) -> int:
    """``opchatgpts chat``: one conversation, a line per turn, until /exit or end of input."""
    opening = _opening(options)
    with _client(options) as client:
        return _converse(options, client.conversation(opening), opening)


def _converse(options: argparse.Namespace, conversation: Conversation, opening: List[Dict[str, str]]) -> int:
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (gives input() line editing and history)
        except ImportError:
            pass
        loaded = ""
        if options.history:
            count = len(conversation.messages) - (1 if options.system else 0)
            loaded = f"Going on from {count} messages of {options.history}. "
        _notice(f"Chatting with {conversation.options.site.url}. {loaded}"
                f"{CHAT_HELP}; Ctrl-C stops an answer, Ctrl-D exits.")
    status = EXIT_OK  # the exit code is the last turn's
    attached: List[str] = []
    while True:
        try:
            line = _read_line(interactive).strip()
        except EOFError:
            if interactive:
                _notice("")
            return status
        except KeyboardInterrupt:
            _notice("")
            continue
        if not line:
            continue
        if line.startswith("/") and not line.startswith("//"):
            command, _, argument = line[1:].partition(" ")
            if command in ("exit", "quit"):
                return status
            if command == "reset":
                conversation.reset()
                conversation.messages = [m for m in opening if m["role"] == "system"]
                _notice("(a new conversation)")
            elif command == "save":
                if argument.strip():
                    _save(conversation.messages, argument.strip())
                else:
                    _notice("(usage: /save FILE)")
            elif command in ("help", "?"):
                _notice(f"({CHAT_HELP})")
            elif command == "attach" and argument.strip():
                _attach(attached, argument.strip())
            else:
                _notice(f"(unknown command /{command}; {CHAT_HELP})")
            continue
        files, attached = attached, []  # they go with this message only, whatever happens
        try:
            with conversation.send(line[1:] if line.startswith("//") else line, files or None) as stream:
                _relay(stream, echo=True, spin=_spin(options))
            status = EXIT_OK
        except KeyboardInterrupt:
            # Only finished answers join the history: the stopped turn is not sent again.
            _notice("(answer stopped; this turn is left out of the conversation)")
            status = EXIT_INTERRUPTED
        except BrokenPipeError:
            raise
        except Exception as exc:
            status = _report(exc, options.verbose)


def _attach(attached: List[str], path: str) -> None:
    """``/attach PATH``: keep ``path`` for the next message, if it is a file."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        _notice(f"(cannot attach {path}: no such file)")
        return
    attached.append(path)
    names = ", ".join(os.path.basename(name) for name in attached)
    _notice(f"({names} will go with your next message)")


def _save(messages: List[Dict[str, str]], path: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(messages, file, ensure_ascii=False, indent=2)
            file.write("\n")
    except OSError as exc:
        _notice(f"(cannot save: {exc})")
    else:
        _notice(f"(saved {len(messages)} messages to {path})")


# -- the emulator -----------------------------------------------------------------------------


def _serve(options: argparse.Namespace) -> int:
    """``opchatgpts serve``: run the emulator in the foreground until Ctrl-C."""
    from .emulator import Emulator

    if options.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    emulator = Emulator(options.generation, delta_delay=options.delay)
    try:
        asyncio.run(_serve_until_cancelled(emulator, options.port, options.verbose))
    except KeyboardInterrupt:
        _notice("emulator stopped")
    except OSError as exc:
        _notice(f"opchatgpts: cannot listen on 127.0.0.1:{options.port}: {exc.strerror or exc}")
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
        _notice(f"AI Engine emulator ({emulator.generation} generation) at {url}\n"
                f"  chatbot page: {page}\n"
                f"  try: opchatgpts {site} 'Hello there'\n"
                "Ctrl-C stops it.")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _demo(options: argparse.Namespace) -> int:
    """``opchatgpts demo``: the emulator in-process, and one streamed answer from it."""
    from .testing import serve_emulator

    prompt = " ".join(options.prompt) or DEMO_PROMPT
    with serve_emulator("open", delta_delay=0.05) as site:
        argv = ["--url", site.url, prompt]
        _notice(f"emulator: {site.url}  (AI Engine 1.9.x, open generation)\n"
                f"$ opchatgpts {' '.join(shlex.quote(a) for a in argv)}")
        return _one_shot(_parser(None).parse_args(argv), read_stdin=False)
