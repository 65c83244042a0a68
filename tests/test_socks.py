"""SOCKS proxies, through a real SOCKS server (pproxy) on 127.0.0.1, on every API."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Iterator

import pytest
from calls import APIS, ask
from faultserver import FaultServer, free_port, stall_before_headers
from leakcheck import assert_no_leaks
from proxyserver import SECRET, ProxyServer

from opchatgpts import APIConnectionError, APITimeoutError, Timeout
from opchatgpts.testing import serve_emulator

pytest.importorskip("aiohttp_socks")
pytest.importorskip("socks")  # PySocks, for requests
pytest.importorskip("pproxy")



@pytest.fixture
def socks5() -> Iterator[ProxyServer]:
    server = ProxyServer("socks5")
    yield server
    server.stop()




@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
@pytest.mark.parametrize("api", APIS)
def test_a_call_through_socks5(socks5: ProxyServer, api: str, scheme: str) -> None:
    with serve_emulator() as site, assert_no_leaks():
        url = site.url.replace("127.0.0.1", "localhost") if scheme == "socks5h" else site.url
        assert ask(api, url, proxy=socks5.url(scheme)) == "Echo: hi"
        port = int(site.url.rsplit(":", 1)[1])
        assert socks5.relayed_to(port), socks5.lines


@pytest.mark.parametrize("api", APIS)
def test_a_call_through_socks4(api: str) -> None:
    server = ProxyServer("socks4", auth=False)
    try:
        with serve_emulator() as site:
            assert ask(api, site.url, proxy=f"socks4://127.0.0.1:{server.port}") == "Echo: hi"
    finally:
        server.stop()


@pytest.mark.parametrize("api", APIS)
def test_a_socks_proxy_that_refuses_is_a_connection_error(api: str) -> None:
    with serve_emulator() as site:
        proxy = f"socks5://user:{SECRET}@127.0.0.1:{free_port()}"  # nobody listens there
        with pytest.raises(APIConnectionError) as info:
            ask(api, site.url, proxy=proxy, max_retries=0)
    assert "proxy" in str(info.value) and SECRET not in str(info.value) and SECRET not in repr(info.value)


@pytest.mark.parametrize("api", APIS)
def test_wrong_socks_credentials_are_a_connection_error(socks5: ProxyServer, api: str) -> None:
    with serve_emulator() as site:
        with pytest.raises(APIConnectionError) as info:
            ask(api, site.url, proxy=socks5.url("socks5", password="wrong-pw"), max_retries=0)
    assert "wrong-pw" not in str(info.value)


@pytest.mark.parametrize("api", APIS)
def test_a_stalled_socks_proxy_times_out_at_connect(api: str) -> None:
    with FaultServer(stall_before_headers) as stalled, serve_emulator() as site:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            ask(api, site.url, proxy=f"socks5://127.0.0.1:{stalled.port}", max_retries=0,
                timeout=Timeout(connect=0.5, read=5))
        assert time.monotonic() - started < 4


def test_the_command_line_takes_a_socks_proxy(socks5: ProxyServer) -> None:
    with serve_emulator() as site:
        done = subprocess.run(
            [sys.executable, "-m", "opchatgpts", "--url", site.url, "--proxy", socks5.url("socks5"), "hi"],
            capture_output=True, text=True, timeout=30,
        )
    assert (done.returncode, done.stdout) == (0, "Echo: hi\n"), done.stderr
