"""The environment's proxies and CA bundles, read as requests, httpx and curl read them."""

from __future__ import annotations

import logging
import ssl
from typing import Any, Iterator

import pytest
import trustme
from calls import APIS, ask
from faultserver import FaultServer, free_port, stream
from leakcheck import assert_no_leaks
from proxyserver import SECRET, ProxyServer
from urllib3.exceptions import InsecureRequestWarning

from opchatgpts import APIConnectionError, TLSVerificationError
from opchatgpts.testing import serve_emulator

CA_NAMES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CA_NAMES + PROXY_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def http_proxy() -> Iterator[ProxyServer]:
    server = ProxyServer("http", auth=False)
    yield server
    server.stop()




def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.parametrize("api", APIS)
def test_the_environments_proxy_is_used(
    api: str, http_proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_emulator() as site, assert_no_leaks():
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{http_proxy.port}")
        assert ask(api, site.url) == "Echo: hi"
        assert http_proxy.relayed_to(port_of(site.url)), http_proxy.lines


@pytest.mark.parametrize("api", APIS)
def test_no_proxy_and_trust_env_false_go_direct(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # a proxy that would fail every request
    with serve_emulator() as site:
        monkeypatch.setenv("HTTP_PROXY", dead)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        assert ask(api, site.url) == "Echo: hi"
        monkeypatch.delenv("NO_PROXY")
        assert ask(api, site.url, trust_env=False) == "Echo: hi"
        with pytest.raises(APIConnectionError, match="proxy"):
            ask(api, site.url, max_retries=0)


@pytest.mark.parametrize("name", ["https_proxy", "Https_Proxy", "ALL_PROXY"])
@pytest.mark.parametrize("api", APIS)
def test_a_proxy_variable_in_any_case_is_read_on_every_call(
    api: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with serve_emulator() as site:
        https_url = site.url.replace("http://", "https://", 1)
        monkeypatch.setenv("NOT_A_PROXY_SETTING", dead)  # only a *_proxy name counts
        assert ask(api, site.url) == "Echo: hi"
        monkeypatch.setenv(name, dead)
        if name.lower() == "https_proxy":  # the emulator is plain http: only all_proxy applies
            assert ask(api, site.url) == "Echo: hi"
            with pytest.raises(APIConnectionError, match="proxy"):
                ask(api, https_url, max_retries=0)
        else:
            with pytest.raises(APIConnectionError, match="proxy"):
                ask(api, site.url, max_retries=0)
        monkeypatch.delenv(name)
        assert ask(api, site.url) == "Echo: hi"


@pytest.mark.parametrize("api", APIS)
def test_an_explicit_proxy_wins(api: str, http_proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_emulator() as site:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
        assert ask(api, site.url, proxy=f"http://127.0.0.1:{http_proxy.port}") == "Echo: hi"
        assert http_proxy.relayed_to(port_of(site.url))


@pytest.mark.parametrize("api", APIS)
def test_the_environments_proxy_credentials_never_show(
    api: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="opchatgpts")
    with serve_emulator() as site:
        monkeypatch.setenv("HTTP_PROXY", f"http://user:{SECRET}@127.0.0.1:{free_port()}")
        with pytest.raises(APIConnectionError) as info:
            ask(api, site.url, max_retries=0)
    shown = [str(info.value), repr(info.value), repr(info.value.__cause__), caplog.text]
    assert not [text for text in shown if SECRET in text]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_site(ca: trustme.CA) -> Iterator[FaultServer]:
    """An HTTPS site whose certificate comes from a private CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FaultServer(stream(), ssl_context=context) as server:
        yield server


@pytest.mark.parametrize("name", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize("api", APIS)
def test_the_environments_ca_bundle_is_trusted(
    api: str, name: str, ca: trustme.CA, tls_site: FaultServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv(name, str(bundle))
    assert ask(api, tls_site.url) == "Echo: one two three"
    with pytest.raises(TLSVerificationError):
        ask(api, tls_site.url, trust_env=False)
    if api == "sync-requests":  # urllib3 warns of verify=False, as it does for requests itself
        with pytest.warns(InsecureRequestWarning):
            assert ask(api, tls_site.url, trust_env=False, verify=False) == "Echo: one two three"
    else:
        assert ask(api, tls_site.url, trust_env=False, verify=False) == "Echo: one two three"


def test_a_ca_bundle_that_cannot_be_read_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/no/such/bundle.pem")
    with pytest.raises(TLSVerificationError, match="CA bundle"):
        ask("sync", "https://127.0.0.1:9", max_retries=0)
