"""``opchatgpts bridge``, run for real in a subprocess in front of the emulator."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, List, Tuple

import openai
import pytest
from test_cli import COMMAND, ENV, TIMEOUT, Reader, interruptible, run_cli

from opchatgpts.testing import RunningEmulator, serve_emulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")


@contextmanager
def bridge_process(*args: str) -> Iterator[Tuple["subprocess.Popen[bytes]", str]]:
    """``opchatgpts bridge ARGS --port 0`` and its base URL, once it listens."""
    with interruptible(), subprocess.Popen(
        [*COMMAND, "bridge", "--port", "0", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            out = Reader(proc.stdout.fileno())
            out.expect(b"Ctrl-C stops it.")
            match = re.search(rb"at (http://127\.0\.0\.1:\d+/v1)\n", out.seen)
            assert match is not None, out.seen
            yield proc, match.group(1).decode()
        finally:
            proc.kill()


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1].split("/")[0])


def refuses_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("generation", ["open", "nonce", "session"])
def test_bridge_serves_until_a_signal_then_exits_0(generation, signum):
    with serve_emulator(generation) as site:
        site_args = ["--page", site.page_url] if generation == "nonce" else ["--url", site.url]
        with bridge_process(*site_args) as (proc, base_url):
            with openai.OpenAI(base_url=base_url, api_key="any", max_retries=0) as oai:
                answer = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}])
                assert answer.choices[0].message.content == "Echo: Hi"
                chunks = list(
                    oai.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "Hi again"}], stream=True
                    )
                )
                assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: Hi again"
            proc.send_signal(signum)
            assert proc.wait(TIMEOUT) == 0
            assert proc.stderr is not None
            err = proc.stderr.read()
            assert b"Traceback" not in err and b"bridge stopped" in err, err
            assert refuses_connections(port_of(base_url))


def test_an_open_stream_finishes_before_the_bridge_stops():
    with serve_emulator("open") as site, bridge_process("--url", site.url) as (proc, base_url):
        texts: List[str] = []
        with openai.OpenAI(base_url=base_url, api_key="any", max_retries=0) as oai:
            # SLOW: half a second per word, so the stream is under way when the signal comes.
            stream = oai.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "SLOW a b"}], stream=True
            )
            for chunk in stream:
                texts.append(chunk.choices[0].delta.content or "")
                if len(texts) == 2:
                    proc.send_signal(signal.SIGTERM)
        assert "".join(texts) == "Echo: SLOW a b"
        assert proc.wait(TIMEOUT) == 0
        assert refuses_connections(port_of(base_url))


def test_a_second_ctrl_c_ends_open_streams_at_once():
    with serve_emulator("open") as site, bridge_process("--url", site.url) as (proc, base_url):
        errors: List[BaseException] = []
        started = threading.Event()

        def read_a_long_answer() -> None:
            with openai.OpenAI(base_url=base_url, api_key="any", max_retries=0) as oai:
                content = "SLOW " + " ".join(["word"] * 40)  # 20 s
                stream = oai.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": content}], stream=True
                )
                try:
                    for _ in stream:
                        started.set()
                except openai.APIError as exc:
                    errors.append(exc)

        reader = threading.Thread(target=read_a_long_answer)
        reader.start()
        try:
            assert started.wait(TIMEOUT)
            proc.send_signal(signal.SIGINT)
            assert proc.stderr is not None
            Reader(proc.stderr.fileno()).expect(b"Ctrl-C again")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(3) == 0
        finally:
            reader.join(TIMEOUT)
        assert len(errors) == 1 and "shutting down" in str(errors[0])
        assert site.emulator.disconnects == 1


def test_api_key_from_the_command_line(emulator: RunningEmulator):
    with bridge_process("--url", emulator.url, "--api-key", "s3cret") as (proc, base_url):
        with openai.OpenAI(base_url=base_url, api_key="nope", max_retries=0) as oai:
            with pytest.raises(openai.AuthenticationError):
                oai.models.list()
        with openai.OpenAI(base_url=base_url, api_key="s3cret", max_retries=0) as oai:
            assert [m.id for m in oai.models.list()] == ["default"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0


def test_python_m_opchatgpts_bridge_help():
    done = run_cli("bridge", "--help")
    assert done.returncode == 0
    for option in ("--url", "--page", "--bot-id", "--host", "--port", "--api-key", "--proxy", "--timeout",
                   "--retries"):  # fmt: skip
        assert option in done.stdout
    assert "bridge" in run_cli("--help").stdout


def test_a_page_that_cannot_be_read_is_left_out_of_several():
    # Both pages are unreachable: the bridge says which and does not start.
    pages = ["--page", "http://127.0.0.1:9/a/", "--page", "http://127.0.0.1:9/b/"]
    done = run_cli("bridge", *pages, "--retries", "0")
    assert done.returncode == 3
    assert "--page http://127.0.0.1:9/a/ left out" in done.stderr and "all 2 sites failed" in done.stderr


def test_url_and_page_exclude_each_other():
    done = run_cli("bridge", "--url", "http://127.0.0.1:9", "--page", "http://127.0.0.1:9/chat/")
    assert done.returncode == 2 and "not allowed with" in done.stderr


def test_a_port_in_use_exits_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("bridge", "--url", "http://127.0.0.1:9", "--port", str(port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
