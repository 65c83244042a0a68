"""gpt4free's provider contract on ``opchatgpts.Opchatgpts``, with no g4f installed.

tests/g4f/ drives the same class through g4f's own entry points (``make test-g4f``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import opchatgpts
from opchatgpts import Opchatgpts
from opchatgpts.testing import RunningEmulator

MESSAGES = [{"role": "user", "content": "hello there"}]

#: What g4f 0.1.x's ChatCompletion and tools read or call on a provider class.
BASE_PROVIDER_SURFACE = {
    "url": Opchatgpts.url,
    "working": True,
    "needs_auth": False,
    "supports_stream": True,
    "supports_gpt_35_turbo": True,
    "supports_gpt_4": False,
    "supports_message_history": True,
}


def test_the_class_has_gpt4free_providers_attributes() -> None:
    for name, value in BASE_PROVIDER_SURFACE.items():
        assert getattr(Opchatgpts, name) == value, name
    for name in ("create_completion", "create_async", "create_async_generator"):
        assert callable(getattr(Opchatgpts, name))
    assert Opchatgpts.url == "https://opchatgpts.net"


def test_params_describes_the_provider_as_gpt4free_did() -> None:
    args = "model: str, messages: list[dict[str, str]], stream: bool, proxy: str"
    assert Opchatgpts.params == f"g4f.provider.Opchatgpts supports: ({args})"

    class MySite(Opchatgpts):
        url = "https://example.com"

    assert MySite.params == f"g4f.provider.MySite supports: ({args})"


@pytest.mark.parametrize("stream", [True, False])
def test_create_completion_takes_stream_as_third_positional_argument(
    emulator: RunningEmulator, stream: bool
) -> None:
    class MySite(Opchatgpts):
        url = emulator.url

    with MySite.create_completion("gpt-3.5-turbo", MESSAGES, stream) as parts:
        parts_list = list(parts)
    assert "".join(parts_list) == "Echo: hello there"
    assert len(parts_list) > 1 if stream else parts_list == ["Echo: hello there"]
    assert emulator.emulator.requests[-1].json()["stream"] is stream


def test_create_async_returns_the_whole_answer(emulator: RunningEmulator) -> None:
    coro = Opchatgpts.create_async("gpt-4", MESSAGES, url=emulator.url)
    assert asyncio.run(coro) == "Echo: hello there"


@pytest.mark.parametrize("call", ["create_completion", "create_async"])
def test_an_error_event_raises_instead_of_ending_the_answer(emulator: RunningEmulator, call: str) -> None:
    """g4f 0.1.x's own Opchatgpts provider skipped ``error`` events and answered ""."""
    cases = [
        ("please FAIL_UPSTREAM now", opchatgpts.QueryRejectedError),  # before any text
        ("go on FAIL_MIDSTREAM", opchatgpts.ServerReportedError),  # after some
    ]
    for text, error in cases:
        failing = [{"role": "user", "content": text}]
        with pytest.raises(error, match="FAIL_UPSTREAM|cURL error 18"):
            if call == "create_async":
                asyncio.run(Opchatgpts.create_async(None, failing, url=emulator.url))
            else:
                list(Opchatgpts.create_completion(None, failing, True, url=emulator.url))


def test_importing_the_g4f_integration_without_g4f_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['g4f'] = None  # as if gpt4free were not installed\n"
        "import opchatgpts\n"
        "assert 'opchatgpts.g4f' not in sys.modules\n"
        "try:\n"
        "    import opchatgpts.g4f\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'opchatgpts.g4f needs gpt4free (g4f): pip install "opchatgpts[g4f]"'
