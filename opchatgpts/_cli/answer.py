"""``opchatgpts [options] PROMPT``: one answer, streamed to stdout, a spinner on stderr."""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import threading
from typing import Any, Iterable, Sequence, TextIO

from .._models import LiveEvent, TextDelta
from .common import EXIT_OK, UsageError, client_for, opening_messages, write


class Spinner:
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


def relay(stream: Iterable[Any], *, echo: bool, spin: bool) -> None:
    """Copy the answer's text to stdout as it arrives, with a spinner on stderr meanwhile."""
    spinner = Spinner(sys.stderr) if spin else None
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
                write(text)
                last = text
    finally:
        if spinner is not None:
            spinner.stop()
        if last and not last.endswith("\n"):
            write("\n")


def spin(options: argparse.Namespace) -> bool:
    return sys.stderr is not None and sys.stderr.isatty() and not options.verbose


def prompt_text(words: Sequence[str], read_stdin: bool) -> str:
    prompt = " ".join(words).strip()
    piped = ""
    if read_stdin and sys.stdin is not None and not sys.stdin.isatty():
        piped = sys.stdin.read().rstrip()
    text = f"{prompt}\n\n{piped}" if prompt and piped.strip() else prompt or piped
    if not text.strip():
        raise UsageError("no prompt: give it as arguments or pipe it in (or run `opchatgpts chat`)")
    return text


def one_shot(options: argparse.Namespace, read_stdin: bool = True) -> int:
    """``opchatgpts [options] PROMPT``: stream one answer to stdout."""
    text = prompt_text(options.prompt, read_stdin)
    messages = [*opening_messages(options), {"role": "user", "content": text}]
    with client_for(options) as client, client.stream_events(
        messages, stream=not options.no_stream, files=options.file
    ) as stream:
        relay(stream, echo=not options.json, spin=spin(options))
        result = stream.until_done()
    if options.json:
        usage = dict(result.usage) if result.usage is not None else None
        answer = {"reply": result.reply, "usage": usage, "chatId": result.chat_id}
        write(json.dumps(answer, ensure_ascii=False) + "\n")
    return EXIT_OK
