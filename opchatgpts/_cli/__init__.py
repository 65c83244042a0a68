"""The ``opchatgpts`` command: one-shot answers, an interactive chat, the emulator as a server,
and the OpenAI-compatible bridge.

Only the answer goes to stdout; notices, the spinner and errors go to stderr. The exit code
tells a script what happened (see ``EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Optional, Sequence

from .answer import one_shot
from .chat import chat
from .common import EXIT_CODES, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, debug_logging, report
from .emulator import demo, serve
from .parsers import COMMANDS, parser_for

__all__ = ["main", "EXIT_CODES"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``opchatgpts`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args and args[0] in COMMANDS else None
    if command == "bridge":  # its own parser and event loop, in opchatgpts.bridge
        from ..bridge._command import main as bridge

        return bridge(args[1:])
    try:
        options = parser_for(command).parse_args(args[1:] if command else args)
    except SystemExit as exc:  # argparse has printed the help or the usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    verbose = bool(getattr(options, "verbose", False))
    handler = debug_logging() if verbose and command != "serve" else None
    run: Callable[[argparse.Namespace], int] = {
        "chat": chat, "serve": serve, "demo": demo,
    }.get(command or "", one_shot)
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
        return report(exc, verbose)
    finally:
        if handler is not None:
            logging.getLogger("opchatgpts").removeHandler(handler)
