"""The command line of each command: its options and its help."""

from __future__ import annotations

import argparse
from typing import Optional

from .._version import __version__
from .common import EXIT_CODES, count, file_option, seconds, site_options

DEMO_PROMPT = "Hello from the opchatgpts demo, streamed token by token"
CHAT_HELP = (
    "/attach PATH sends a file (an image) with your next message, /reset starts anew (keeping "
    "--system), /save FILE writes the conversation as JSON, /exit leaves"
)

COMMANDS = ("chat", "serve", "demo", "bridge")


def parser_for(command: Optional[str]) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    if command == "chat":
        parser = argparse.ArgumentParser(
            prog="opchatgpts chat", formatter_class=raw,
            description="Chat with a site's bot, one conversation, in your terminal.",
            epilog=f"{CHAT_HELP}.\nCtrl-C stops the current answer, Ctrl-D exits.\n"
            "Start a line with // to send a line that starts with /.\n"
            "Leaving exits 0, or with the code of the last turn if it failed (see opchatgpts --help).",
        )
        site_options(parser)
    elif command == "serve":
        parser = argparse.ArgumentParser(
            prog="opchatgpts serve",
            description="Run the built-in AI Engine emulator on 127.0.0.1 until Ctrl-C, to try "
            "everything offline. It answers 'Echo: <your message>'.",
        )
        parser.add_argument("--port", type=count, default=8080, help="the port (default 8080; 0: any free)")
        parser.add_argument(
            "--generation", choices=("open", "nonce", "session"), default="open",
            help="the plugin generation to play: open (1.9.x), nonce (2.0-2.4.3), session (2.4.4+, 3.x)",
        )
        parser.add_argument(
            "--delay", type=seconds, default=0.05, metavar="SECONDS", help="time per streamed word (0.05)"
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
        site_options(parser)
        file_option(parser)
        out = parser.add_argument_group("output")
        out.add_argument("--no-stream", action="store_true", help="ask the server for one JSON answer")
        out.add_argument("--json", action="store_true", help="print one JSON object: reply, usage, chatId")
        parser.add_argument("--version", action="version", version=f"opchatgpts {__version__}")
    return parser
