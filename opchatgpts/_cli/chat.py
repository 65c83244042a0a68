"""``opchatgpts chat``: one conversation, a line per turn, in a terminal or from a pipe."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

from .._conversation import Conversation
from .answer import relay, spin
from .common import EXIT_INTERRUPTED, EXIT_OK, client_for, notice, opening_messages, report
from .parsers import CHAT_HELP


def _read_line(interactive: bool) -> str:
    if not interactive:
        return input()
    if sys.stdout.isatty():
        return input("you> ")
    sys.stderr.write("you> ")  # stdout is for answers only
    sys.stderr.flush()
    return input()


def chat(options: argparse.Namespace) -> int:
    """``opchatgpts chat``: one conversation, a line per turn, until /exit or end of input."""
    opening = opening_messages(options)
    with client_for(options) as client:
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
        notice(f"Chatting with {conversation.options.site.url}. {loaded}"
               f"{CHAT_HELP}; Ctrl-C stops an answer, Ctrl-D exits.")
    status = EXIT_OK  # the exit code is the last turn's
    attached: List[str] = []
    while True:
        try:
            line = _read_line(interactive).strip()
        except EOFError:
            if interactive:
                notice("")
            return status
        except KeyboardInterrupt:
            notice("")
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
                notice("(a new conversation)")
            elif command == "save":
                if argument.strip():
                    _save(conversation.messages, argument.strip())
                else:
                    notice("(usage: /save FILE)")
            elif command in ("help", "?"):
                notice(f"({CHAT_HELP})")
            elif command == "attach" and argument.strip():
                _attach(attached, argument.strip())
            else:
                notice(f"(unknown command /{command}; {CHAT_HELP})")
            continue
        files, attached = attached, []  # they go with this message only, whatever happens
        try:
            with conversation.send(line[1:] if line.startswith("//") else line, files or None) as stream:
                relay(stream, echo=True, spin=spin(options))
            status = EXIT_OK
        except KeyboardInterrupt:
            # Only finished answers join the history: the stopped turn is not sent again.
            notice("(answer stopped; this turn is left out of the conversation)")
            status = EXIT_INTERRUPTED
        except BrokenPipeError:
            raise
        except Exception as exc:
            status = report(exc, options.verbose)


def _attach(attached: List[str], path: str) -> None:
    """``/attach PATH``: keep ``path`` for the next message, if it is a file."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        notice(f"(cannot attach {path}: no such file)")
        return
    attached.append(path)
    names = ", ".join(os.path.basename(name) for name in attached)
    notice(f"({names} will go with your next message)")


def _save(messages: List[Dict[str, str]], path: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(messages, file, ensure_ascii=False, indent=2)
            file.write("\n")
    except OSError as exc:
        notice(f"(cannot save: {exc})")
    else:
        notice(f"(saved {len(messages)} messages to {path})")
