"""The command line: ``opchatgpts demo`` streams an answer from the built-in emulator."""

from __future__ import annotations

import sys
from typing import List, Optional

__all__ = ["main"]


def demo(prompt: str = "Hello from the opchatgpts demo, streamed token by token") -> int:
    """Start the local emulator, stream one answer from it to stdout, and stop it."""
    from ._provider import Opchatgpts
    from .testing import serve_emulator

    with serve_emulator("open", delta_delay=0.05) as site:
        print(f"emulator: {site.url}  (AI Engine, open generation)", file=sys.stderr)
        print(f"> {prompt}", file=sys.stderr)
        with Opchatgpts.create_completion(
            None, [{"role": "user", "content": prompt}], url=site.url
        ) as stream:
            for delta in stream:
                sys.stdout.write(delta)
                sys.stdout.flush()
        sys.stdout.write("\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``opchatgpts`` command."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["demo"]:
        return demo(" ".join(args[1:]) or "Hello from the opchatgpts demo, streamed token by token")
    print("usage: opchatgpts demo [PROMPT]", file=sys.stderr)
    return 2
