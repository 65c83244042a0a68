"""The ``opchatgpts`` command, run for real in a subprocess against the emulator."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from opchatgpts.emulator import Faults
from opchatgpts.testing import RunningEmulator, serve_emulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses pty and POSIX signals")

TIMEOUT = 20.0
ENV = {k: v for k, v in os.environ.items() if k != "OPCHATGPTS_URL"}
ENV.update(PYTHONIOENCODING="utf-8", TERM="dumb", PYTHONUNBUFFERED="1")
COMMAND = [sys.executable, "-m", "opchatgpts"]
SPINNER_LABEL = b"waiting for the answer"


def run_cli(*args: str, stdin: str = "", cwd: Optional[Path] = None) -> "subprocess.CompletedProcess[str]":
    """Run the command to its end, with ``stdin`` piped in (empty by default)."""
    return subprocess.run(
        [*COMMAND, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT, env=ENV, cwd=cwd
    )


def submits(site: RunningEmulator) -> List[Dict[str, Any]]:
    """The JSON bodies of the chat requests the emulator received."""
    return [r.json() for r in site.emulator.requests if r.path.endswith("/chats/submit")]


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("opchatgpts: ")
    return lines[0]


@contextmanager
def interruptible() -> Iterator[None]:
    """Let children get Ctrl-C: a shell's background job inherits SIGINT ignored."""
    old = signal.getsignal(signal.SIGINT)
    if old == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        if old == signal.SIG_IGN:
            signal.signal(signal.SIGINT, old)


class Reader:
    """What a child wrote on one file descriptor, read as needed."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = bytearray()
        self.pos = 0

    def expect(self, needle: bytes, timeout: float = 10.0) -> None:
        """Read until ``needle`` comes after the previous match."""
        deadline = time.monotonic() + timeout
        while needle not in self.seen[self.pos:]:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} never came; got {bytes(self.seen)!r}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the pty's other side is closed
                    chunk = b""
                assert chunk, f"end of output before {needle!r}; got {bytes(self.seen)!r}"
                self.seen += chunk
        self.pos = self.seen.index(needle, self.pos) + len(needle)


def drain(fd: int, seen: bytearray) -> None:
    """Read what is left on ``fd`` without waiting."""
    while select.select([fd], [], [], 0.05)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        seen += chunk


@pytest.fixture
def slow_site() -> Iterator[RunningEmulator]:
    """An emulator that takes 0.4 s per word: long enough for a spinner to show."""
    with serve_emulator("open", delta_delay=0.4) as running:
        yield running


# -- one-shot ---------------------------------------------------------------------------------


def test_one_shot_streams_the_answer_and_nothing_else(slow_site):
    done = run_cli("--url", slow_site.url, "Two plus two?")
    assert (done.returncode, done.stdout, done.stderr) == (0, "Echo: Two plus two?\n", "")
    [body] = submits(slow_site)
    assert body["stream"] is True and body["newMessage"] == "Two plus two?"


def test_prompt_from_a_pipe(emulator):
    done = run_cli("--url", emulator.url, stdin="hello from a pipe\n")
    assert (done.returncode, done.stdout) == (0, "Echo: hello from a pipe\n")


def test_prompt_then_piped_text(emulator):
    done = run_cli("--url", emulator.url, "Summarize", "this:", stdin="line one\nline two\n")
    assert done.returncode == 0, done.stderr
    assert submits(emulator)[0]["newMessage"] == "Summarize this:\n\nline one\nline two"
    assert done.stdout == "Echo: Summarize this:\n\nline one\nline two\n"


def test_json_output(emulator):
    done = run_cli("--url", emulator.url, "--json", "Hi")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) == {"reply", "usage", "chatId"}
    assert answer["reply"] == "Echo: Hi"
    assert answer["usage"]["total_tokens"] > 0
    assert answer["chatId"] == submits(emulator)[0]["chatId"]


def test_no_stream_asks_for_one_json_answer(emulator):
    done = run_cli("--url", emulator.url, "--no-stream", "Hi there")
    assert (done.returncode, done.stdout) == (0, "Echo: Hi there\n")
    assert submits(emulator)[0]["stream"] is False


def test_system_and_history_are_sent_before_the_prompt(tmp_path):
    history = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "Echo: q1"}]
    (tmp_path / "history.json").write_text(json.dumps(history), encoding="utf-8")
    with serve_emulator("session") as site:
        done = run_cli("--url", site.url, "--system", "Be terse", "--history", "history.json", "q2",
                       cwd=tmp_path)
        assert (done.returncode, done.stdout) == (0, "Echo: q2\n"), done.stderr
        body = submits(site)[-1]
    assert body["messages"] == [{"role": "system", "content": "Be terse"}, *history]
    assert body["newMessage"] == "q2"


def test_page_discovery(tmp_path):
    with serve_emulator("session", bot_ids=("helper",), context_id=77) as site:
        done = run_cli("--page", site.page_url, "--json", "Found you")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["reply"] == "Echo: Found you"
        body = submits(site)[-1]
    assert (body["botId"], body["contextId"]) == ("helper", 77)


def test_several_urls_fail_over_in_order(emulator):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    done = run_cli("--url", dead, "--url", emulator.url, "--retries", "0", "-v", "over there")
    assert (done.returncode, done.stdout) == (0, "Echo: over there\n"), done.stderr
    assert f"{dead} failed (APIConnectionError" in done.stderr and f"trying {emulator.url}" in done.stderr
    down = run_cli("--url", dead, "--url", dead + "/other", "--retries", "0", "hi")
    assert down.returncode == 3  # every site unreachable: a connection failure
    line = one_error_line(down.stderr)
    assert "AllSitesUnreachableError: all 2 sites failed:" in line
    assert f" {dead}: APIConnectionError: " in line and f" {dead}/other: APIConnectionError: " in line


def test_several_pages_fail_over(emulator):
    with serve_emulator("nonce") as second:
        missing = emulator.url + "/no-such-page/"
        done = run_cli("--page", missing, "--page", second.page_url, "--json", "paged")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["reply"] == "Echo: paged"
        assert f"--page {missing} left out" in done.stderr


def test_demo_streams_from_its_own_emulator():
    done = run_cli("demo", "hi", "there")
    assert (done.returncode, done.stdout) == (0, "Echo: hi there\n"), done.stderr
    assert "emulator: http://127.0.0.1:" in done.stderr


# -- exit codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],  # no prompt, empty stdin
        ["--no-such-option", "hi"],
        ["--timeout", "0", "hi"],
        ["--url", "example.com", "hi"],
        ["--history", "missing.json", "hi"],
    ],
)
def test_usage_errors_exit_2(args, emulator):
    if "--url" not in args:
        args = ["--url", emulator.url, *args]
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr and "error" in done.stderr
    assert submits(emulator) == []


def test_connection_refused_exits_3():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_cli("--url", f"http://127.0.0.1:{port}", "--retries", "0", "hi")
    assert (done.returncode, done.stdout) == (3, "")
    assert "APIConnectionError" in one_error_line(done.stderr)


def test_timeout_exits_3(emulator):
    emulator.emulator.faults = Faults(delay=3)
    done = run_cli("--url", emulator.url, "--timeout", "0.5", "--retries", "0", "hi")
    assert done.returncode == 3, done.stderr
    assert "Timeout" in one_error_line(done.stderr)


def test_server_error_exits_1_with_one_line(emulator):
    done = run_cli("--url", emulator.url, "please FAIL_UPSTREAM now")
    assert (done.returncode, done.stdout) == (1, "")
    assert "FAIL_UPSTREAM" in one_error_line(done.stderr)
    verbose = run_cli("-v", "--url", emulator.url, "please FAIL_UPSTREAM now")
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr and "ServerReportedError" in verbose.stderr


def test_sigint_mid_answer_exits_130():
    words = " ".join(f"w{i}" for i in range(30))
    with serve_emulator("open", delta_delay=0.2) as site, interruptible():
        with subprocess.Popen([*COMMAND, "--url", site.url, words], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV) as proc:
            try:
                assert proc.stdout is not None and proc.stderr is not None
                out = Reader(proc.stdout.fileno())
                out.expect(b"w0")
                proc.send_signal(signal.SIGINT)
                assert proc.wait(TIMEOUT) == 130
                out.seen += proc.stdout.read()
                assert b"Traceback" not in proc.stderr.read()
            finally:
                proc.kill()
        assert out.seen.startswith(b"Echo: w0") and b"w29" not in out.seen
        deadline = time.monotonic() + 5
        while site.emulator.disconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert site.emulator.disconnects == 1  # the connection was released at once


# -- files ------------------------------------------------------------------------------------

# The 2x2 PNG of the recordings (75 bytes).
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR42mP4z8DAAMIM/4EAAB/uBfvxq7p3AAAAAElFTkSuQmCC"
)


@pytest.mark.parametrize("generation", ["open", "nonce", "session"])
def test_file_sends_an_image_with_the_prompt(tmp_path, generation):
    (tmp_path / "cat.png").write_bytes(PIXEL)
    with serve_emulator(generation) as site:
        done = run_cli("--url", site.url, "--file", "cat.png", "What is in this image?", cwd=tmp_path)
        label = "image/jpeg" if generation == "open" else "image/png"
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == f"Echo: What is in this image? [image {label} 75 bytes]\n"
        [body] = submits(site)
        assert {"open": "newImageId", "nonce": "newFileId", "session": "newFileId"}[generation] in body


def test_file_several_times(tmp_path):
    (tmp_path / "a.png").write_bytes(PIXEL)
    (tmp_path / "b.png").write_bytes(PIXEL)
    with serve_emulator("session") as site:
        done = run_cli("--url", site.url, "--file", "a.png", "--file", "b.png", "--json", "Two", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["reply"] == "Echo: Two" + " [image image/png 75 bytes]" * 2
    with serve_emulator("nonce") as site:
        done = run_cli("--url", site.url, "--file", "a.png", "--file", "b.png", "Two", cwd=tmp_path)
        assert (done.returncode, done.stdout) == (1, "")
        line = one_error_line(done.stderr)
        assert "TooManyFilesError" in line and "a.png" in line and "b.png" in line and "takes one" in line
        assert submits(site) == []


def test_file_errors(tmp_path, emulator):
    done = run_cli("--url", emulator.url, "--file", "missing.png", "hi", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")  # the caller's mistake, found before any I/O
    assert one_error_line(done.stderr) == (
        "opchatgpts: InvalidAttachmentError: missing.png: cannot read the file: No such file or directory"
    )
    assert len(emulator.emulator.requests) == 0
    (tmp_path / "evil.php").write_bytes(b"<?php")
    done = run_cli("--url", emulator.url, "--file", "evil.php", "hi", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")  # the site refused it
    line = one_error_line(done.stderr)
    assert "UploadRejectedError: HTTP 400: evil.php:" in line and "Invalid file type." in line


def test_attach_in_chat_goes_with_the_next_message(tmp_path):
    (tmp_path / "cat.png").write_bytes(PIXEL)
    script = "/attach missing.png\n/attach cat.png\nwhat is this\nand now\n/save chat.json\n"
    with serve_emulator("session") as site:
        done = run_cli("chat", "--url", site.url, stdin=script, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "Echo: what is this [image image/png 75 bytes]\nEcho: and now\n"
        assert "(cannot attach missing.png: no such file)" in done.stderr
        assert "(cat.png will go with your next message)" in done.stderr
        first, second = submits(site)
        assert first["newFileId"] and "newFileId" not in second
    saved = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert [m["content"] for m in saved if m["role"] == "user"] == ["what is this", "and now"]


# -- terminals --------------------------------------------------------------------------------


def test_spinner_on_a_terminal_only_on_stderr(slow_site):
    master, slave = os.openpty()
    try:
        with subprocess.Popen([*COMMAND, "--url", slow_site.url, "Spin"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=slave, env=ENV) as proc:
            os.close(slave)
            slave = -1
            try:
                out, _ = proc.communicate(timeout=TIMEOUT)
            finally:
                proc.kill()
        terminal = bytearray()
        drain(master, terminal)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert (proc.returncode, out) == (0, b"Echo: Spin\n")
    assert SPINNER_LABEL in terminal
    assert terminal.endswith(b"\r\x1b[K")  # and the spinner erased itself


def test_chat_from_a_pipe(tmp_path, emulator):
    script = "one\ntwo\n/save first.json\n/reset\nthree\n/save second.json\n/exit\nnever sent\n"
    done = run_cli("chat", "--url", emulator.url, stdin=script, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "Echo: one\nEcho: two\nEcho: three\n"), done.stderr
    first = json.loads((tmp_path / "first.json").read_text(encoding="utf-8"))
    assert first == [
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "Echo: one"},
        {"role": "user", "content": "two"}, {"role": "assistant", "content": "Echo: two"},
    ]
    second = json.loads((tmp_path / "second.json").read_text(encoding="utf-8"))
    assert second == [{"role": "user", "content": "three"}, {"role": "assistant", "content": "Echo: three"}]
    bodies = submits(emulator)
    assert [b["newMessage"] for b in bodies] == ["one", "two", "three"]
    assert bodies[1]["messages"] == first[:2] and bodies[2]["messages"] == []
    assert bodies[0]["chatId"] == bodies[1]["chatId"] != bodies[2]["chatId"]


def test_chat_in_a_terminal(tmp_path):
    master, slave = os.openpty()
    terminal = Reader(master)
    with serve_emulator("nonce", delta_delay=0.3) as site, interruptible():
        try:
            with subprocess.Popen([*COMMAND, "chat", "--page", site.page_url], stdin=slave, stdout=slave,
                                  stderr=slave, env=ENV, cwd=tmp_path) as proc:
                os.close(slave)
                slave = -1
                try:
                    terminal.expect(b"you> ")
                    os.write(master, b"first question\r")
                    terminal.expect(b"Echo: first question")
                    assert SPINNER_LABEL in terminal.seen
                    terminal.expect(b"you> ")
                    os.write(master, b"tell me a very long story about many things please\r")
                    terminal.expect(b"Echo: tell")
                    proc.send_signal(signal.SIGINT)  # Ctrl-C: stops the answer, not the chat
                    terminal.expect(b"(answer stopped; this turn is left out of the conversation)")
                    terminal.expect(b"you> ")
                    os.write(master, b"/frobnicate\r")
                    terminal.expect(b"(unknown command /frobnicate;")
                    terminal.expect(b"you> ")
                    os.write(master, b"/save chat.json\r")
                    terminal.expect(b"(saved 2 messages")
                    os.write(master, b"second\r")
                    terminal.expect(b"Echo: second")
                    terminal.expect(b"you> ")
                    os.write(master, b"\x04")  # Ctrl-D
                    assert proc.wait(TIMEOUT) == 0  # the last turn's code, not the stopped one's
                finally:
                    proc.kill()
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
        bodies = submits(site)
    assert b"Traceback" not in terminal.seen
    assert len(bodies) == 3
    # The stopped answer stays out of the conversation.
    assert bodies[2]["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "Echo: first question"},
    ]
    saved = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert saved == bodies[2]["messages"]


def test_chat_says_when_it_goes_on_from_a_history(tmp_path, emulator):
    history = tmp_path / "chat.json"
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    history.write_text(json.dumps(turns))
    master, slave = os.openpty()
    terminal = Reader(master)
    try:
        with subprocess.Popen([*COMMAND, "chat", "--url", emulator.url, "--history", str(history)],
                              stdin=slave, stdout=slave, stderr=slave, env=ENV, cwd=tmp_path) as proc:
            os.close(slave)
            slave = -1
            try:
                terminal.expect(b"you> ")
                os.write(master, b"\x04")  # Ctrl-D
                assert proc.wait(TIMEOUT) == 0
            finally:
                proc.kill()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert f"Going on from 2 messages of {history}.".encode() in terminal.seen


def test_serve_runs_the_emulator_until_ctrl_c():
    with interruptible(), subprocess.Popen(
        [*COMMAND, "serve", "--port", "0", "--generation", "session", "--delay", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    ) as proc:
        try:
            assert proc.stderr is not None and proc.stdout is not None
            err = Reader(proc.stderr.fileno())
            err.expect(b"Ctrl-C")
            match = re.search(rb"http://127\.0\.0\.1:\d+", err.seen)
            assert match is not None, err.seen
            done = run_cli("--url", match.group().decode(), "Are you there?")
            assert (done.returncode, done.stdout) == (0, "Echo: Are you there?\n"), done.stderr
            proc.send_signal(signal.SIGINT)
            assert proc.wait(TIMEOUT) == 0
            rest = proc.stderr.read()
            assert b"emulator stopped" in rest and b"Traceback" not in rest
            assert proc.stdout.read() == b""
        finally:
            proc.kill()
