"""The provider, driven through gpt4free's (g4f) own entry points, against the emulator.

``make test-g4f`` runs this module in two venvs: g4f 0.1.7.5 and the newest g4f. ``make test``
skips it (no g4f there). What each g4f offers:

* ``g4f.ChatCompletion.create`` (joined, ``stream=True``) and ``create_async``: every version.
  Tested with the SDK's own class, ``opchatgpts.Opchatgpts``, and with ``opchatgpts.g4f``'s.
* ``g4f.client.Client`` and ``AsyncClient``: g4f >= 0.2, with ``opchatgpts.g4f.Opchatgpts``.

Every call goes to an emulator on 127.0.0.1, in each plugin generation. g4f's own look-ups of
its newest version on PyPI are switched off, and its files go to a temporary directory.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Tuple, Type
from unittest import mock

import pytest

import opchatgpts
from opchatgpts.testing import RunningEmulator


def _installed_g4f() -> Tuple[int, ...]:
    try:
        text = importlib.metadata.version("g4f")
    except importlib.metadata.PackageNotFoundError:
        return ()
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


G4F_VERSION = _installed_g4f()
if not G4F_VERSION:
    pytest.skip("gpt4free (g4f) is not installed: make test-g4f", allow_module_level=True)

if G4F_VERSION < (0, 2):
    # g4f 0.1.x asks PyPI for its newest version as it is imported (requests.get, no
    # timeout) and prints the answer. Answer with its own version instead.
    _pypi = mock.Mock(**{"json.return_value": {"info": {"version": importlib.metadata.version("g4f")}}})
    with mock.patch("requests.get", return_value=_pypi) as _get:
        import g4f
    assert _get.call_count == 1  # the look-up this patch replaced
else:
    import g4f
    import g4f.debug

    g4f.debug.version_check = False  # else the first call asks PyPI from a thread

from opchatgpts.g4f import Opchatgpts as G4FOpchatgpts  # noqa: E402

HAS_CLIENT = importlib.util.find_spec("g4f.client") is not None
client_only = pytest.mark.skipif(not HAS_CLIENT, reason=f"g4f {G4F_VERSION} has no g4f.client")
old_only = pytest.mark.skipif(G4F_VERSION >= (0, 2), reason="g4f 0.1.x's provider surface")

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello there"},
]
ANSWER = "Echo: hello there"
FAILING = [{"role": "user", "content": "please FAIL_UPSTREAM now"}]


@pytest.fixture(autouse=True)
def g4f_files_in_tmp(tmp_path: Any) -> Iterator[None]:
    """Today's g4f appends a usage record to its cookies directory on every Client call."""
    if not HAS_CLIENT:
        yield
        return
    from g4f.cookies import get_cookies_dir, set_cookies_dir

    before = get_cookies_dir()
    set_cookies_dir(str(tmp_path / "g4f"))
    try:
        yield
    finally:
        set_cookies_dir(before)


def site_class(base: Type[Any], site: RunningEmulator) -> Type[Any]:
    """A subclass of ``base`` that sets ``url``: how a user targets another site."""
    return type("MySite", (base,), {"url": site.url})


#: The providers that g4f's ChatCompletion takes: the SDK's class and the g4f integration's,
#: each as a subclass that sets ``url``, and the SDK's plain class with ``url=`` per call.
PROVIDER_KINDS = ["sdk-subclass", "sdk-url-keyword", "g4f-subclass"]


def provider_and_kwargs(kind: str, site: RunningEmulator) -> Tuple[Type[Any], Dict[str, Any]]:
    if kind == "sdk-subclass":
        return site_class(opchatgpts.Opchatgpts, site), {}
    if kind == "sdk-url-keyword":
        return opchatgpts.Opchatgpts, {"url": site.url}
    return site_class(G4FOpchatgpts, site), {}


# -- both generations of g4f: ChatCompletion.create / create_async ---------------------------


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_chat_completion_create_joined(kind: str, any_generation: RunningEmulator) -> None:
    provider, kwargs = provider_and_kwargs(kind, any_generation)
    text = g4f.ChatCompletion.create("gpt-3.5-turbo", MESSAGES, provider=provider, **kwargs)
    assert text == ANSWER


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_chat_completion_create_streamed(kind: str, any_generation: RunningEmulator) -> None:
    provider, kwargs = provider_and_kwargs(kind, any_generation)
    result = g4f.ChatCompletion.create("gpt-3.5-turbo", MESSAGES, provider=provider, stream=True, **kwargs)
    parts = list(result)
    assert len(parts) > 1 and all(isinstance(part, str) for part in parts)
    assert "".join(parts) == ANSWER


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_chat_completion_create_async(kind: str, any_generation: RunningEmulator) -> None:
    provider, kwargs = provider_and_kwargs(kind, any_generation)
    coro = g4f.ChatCompletion.create_async("gpt-4", MESSAGES, provider=provider, **kwargs)
    assert asyncio.run(coro) == ANSWER


@pytest.mark.parametrize("call", ["joined", "streamed", "async"])
@pytest.mark.parametrize("kind", ["sdk-subclass", "g4f-subclass"])
def test_chat_completion_upstream_error_raises(kind: str, call: str, any_generation: RunningEmulator) -> None:
    """The seed returned "" on an ``error`` event; the failure is an exception here."""
    provider, _ = provider_and_kwargs(kind, any_generation)
    # The upstream fails before any text: the plugin refused the query, whether it answered
    # with one JSON document (stream=False) or with an error event.
    with pytest.raises(opchatgpts.QueryRejectedError, match="FAIL_UPSTREAM"):
        if call == "async":
            asyncio.run(g4f.ChatCompletion.create_async("gpt-3.5-turbo", FAILING, provider=provider))
        else:
            stream = call == "streamed"
            list(g4f.ChatCompletion.create("gpt-3.5-turbo", FAILING, provider=provider, stream=stream))


def test_importing_opchatgpts_does_not_import_g4f() -> None:
    code = "import sys, opchatgpts, opchatgpts.testing; print('g4f' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_the_integration_class_is_a_g4f_provider() -> None:
    if HAS_CLIENT:
        from g4f.providers.base_provider import AsyncGeneratorProvider, ProviderModelMixin

        assert issubclass(G4FOpchatgpts, ProviderModelMixin)
        assert G4FOpchatgpts.get_dict()["url"] == opchatgpts.Opchatgpts.url
    else:
        from g4f.Provider.base_provider import AsyncGeneratorProvider
    assert issubclass(G4FOpchatgpts, AsyncGeneratorProvider)
    assert G4FOpchatgpts.working and not G4FOpchatgpts.needs_auth and G4FOpchatgpts.supports_stream


# -- g4f 0.1.x: the surface its providers had -------------------------------------------------


@old_only
def test_sdk_class_has_the_whole_base_provider_surface() -> None:
    from g4f.Provider.base_provider import BaseProvider

    names = set(dir(BaseProvider)) | set(BaseProvider.__annotations__)  # url is only annotated
    surface = {name for name in names if not name.startswith("_")}
    assert surface == {
        "url", "working", "needs_auth", "supports_stream", "supports_gpt_35_turbo",
        "supports_gpt_4", "create_completion", "create_async", "params",
    }  # fmt: skip
    assert [name for name in surface if not hasattr(opchatgpts.Opchatgpts, name)] == []
    assert opchatgpts.Opchatgpts.needs_auth is False


@old_only
def test_sdk_class_has_the_seed_providers_surface() -> None:
    """g4f 0.1.7.5 shipped an Opchatgpts provider (disabled: ``working = False``)."""
    seed = g4f.Provider.Opchatgpts
    assert {name for name in vars(seed) if not name.startswith("_")} == {
        "url", "supports_gpt_35_turbo", "working", "create_async_generator", "params",
    }  # fmt: skip
    assert opchatgpts.Opchatgpts.url == seed.url
    assert opchatgpts.Opchatgpts.supports_gpt_35_turbo and opchatgpts.Opchatgpts.supports_message_history
    assert opchatgpts.Opchatgpts.params == seed.params
    mine = type("Seed", (opchatgpts.Opchatgpts,), {})
    assert mine.params == seed.params.replace("Opchatgpts", "Seed")


@old_only
@pytest.mark.parametrize("base", ["sdk", "g4f"])
def test_retry_provider(base: str, emulator: RunningEmulator) -> None:
    """g4f 0.1.x's models pick a provider through a RetryProvider."""
    cls = opchatgpts.Opchatgpts if base == "sdk" else G4FOpchatgpts
    retry = g4f.Provider.RetryProvider([site_class(cls, emulator)], shuffle=False)
    assert g4f.ChatCompletion.create("gpt-3.5-turbo", MESSAGES, provider=retry) == ANSWER
    assert asyncio.run(g4f.ChatCompletion.create_async("gpt-3.5-turbo", MESSAGES, provider=retry)) == ANSWER


# -- today's g4f: g4f.client.Client / AsyncClient ---------------------------------------------


def _chunks_text(chunks: List[Any]) -> str:
    assert chunks[-1].choices[0].finish_reason == "stop"
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks)


@client_only
def test_client(any_generation: RunningEmulator) -> None:
    from g4f.client import Client

    provider = site_class(G4FOpchatgpts, any_generation)
    response = Client(provider=provider).chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert response.choices[0].message.content == ANSWER
    assert response.choices[0].finish_reason == "stop"


@client_only
def test_client_streamed(any_generation: RunningEmulator) -> None:
    from g4f.client import Client

    provider = site_class(G4FOpchatgpts, any_generation)
    chunks = list(Client(provider=provider).chat.completions.create(model="", messages=MESSAGES, stream=True))
    assert len(chunks) > 2
    assert _chunks_text(chunks) == ANSWER


@client_only
def test_async_client(any_generation: RunningEmulator) -> None:
    from g4f.client import AsyncClient

    provider = site_class(G4FOpchatgpts, any_generation)

    async def main() -> Any:
        return await AsyncClient(provider=provider).chat.completions.create(model="gpt-4", messages=MESSAGES)

    response = asyncio.run(main())
    assert response.choices[0].message.content == ANSWER
    assert response.provider == "MySite"


@client_only
def test_async_client_streamed(any_generation: RunningEmulator) -> None:
    from g4f.client import AsyncClient

    provider = site_class(G4FOpchatgpts, any_generation)

    async def main() -> List[Any]:
        create = AsyncClient(provider=provider).chat.completions.create
        return [chunk async for chunk in create(model="", messages=MESSAGES, stream=True)]

    chunks = asyncio.run(main())
    assert len(chunks) > 2
    assert _chunks_text(chunks) == ANSWER


def _client_call(provider: Type[Any], client: str, stream: bool, messages: Any, **kwargs: Any) -> Any:
    """One g4f Client or AsyncClient call, consumed to the end."""
    from g4f.client import AsyncClient, Client

    if client == "sync":
        result = Client(provider=provider).chat.completions.create(
            model="", messages=messages, stream=stream, **kwargs
        )
        return list(result) if stream else result

    async def main() -> Any:
        create = AsyncClient(provider=provider).chat.completions.create
        if stream:
            return [chunk async for chunk in create(model="", messages=messages, stream=True, **kwargs)]
        return await create(model="", messages=messages, **kwargs)

    return asyncio.run(main())


@client_only
@pytest.mark.parametrize("stream", [False, True], ids=["joined", "streamed"])
@pytest.mark.parametrize("client", ["sync", "async"])
def test_client_upstream_error_is_the_same_streamed_or_not(
    client: str, stream: bool, any_generation: RunningEmulator
) -> None:
    provider = site_class(G4FOpchatgpts, any_generation)
    with pytest.raises(opchatgpts.QueryRejectedError, match="FAIL_UPSTREAM"):
        _client_call(provider, client, stream, FAILING)
    with pytest.raises(opchatgpts.ServerReportedError, match="cURL error 18"):
        _client_call(provider, client, stream, [{"role": "user", "content": "go on FAIL_MIDSTREAM"}])


@client_only
@pytest.mark.parametrize("client", ["sync", "async"])
def test_client_timeout_is_the_sdks(client: str, emulator: RunningEmulator) -> None:
    """g4f's ``timeout`` becomes the SDK's, and its timeout error reaches the caller as it is."""
    provider = site_class(G4FOpchatgpts, emulator)
    slow = [{"role": "user", "content": "SLOW one two three"}]
    with pytest.raises(opchatgpts.OpchatgptsError) as caught:
        _client_call(provider, client, False, slow, timeout=0.2, max_retries=0)
    assert isinstance(caught.value, TimeoutError)


@client_only
def test_client_base_class_with_url_keyword(emulator: RunningEmulator) -> None:
    from g4f.client import Client

    response = Client(provider=G4FOpchatgpts).chat.completions.create(
        model="", messages=MESSAGES, url=emulator.url
    )
    assert response.choices[0].message.content == ANSWER


@client_only
def test_client_from_page(any_generation: RunningEmulator) -> None:
    from g4f.client import Client

    provider = G4FOpchatgpts.from_page(any_generation.page_url)
    assert provider.url == any_generation.url
    assert provider.backend.chatbot is not None
    response = Client(provider=provider).chat.completions.create(model="", messages=MESSAGES)
    assert response.choices[0].message.content == ANSWER


@client_only
def test_client_backend_brings_its_site(emulator: RunningEmulator) -> None:
    from g4f.client import Client

    backend = site_class(opchatgpts.Opchatgpts, emulator)
    provider = type("Backed", (G4FOpchatgpts,), {"backend": backend})
    assert provider.url == emulator.url
    response = Client(provider=provider).chat.completions.create(model="", messages=MESSAGES)
    assert response.choices[0].message.content == ANSWER


class _Recorded(Exception):
    """Stops a call once its settings are known."""


@client_only
@pytest.mark.parametrize("stream", [False, True], ids=["joined", "streamed"])
@pytest.mark.parametrize("client", ["sync", "async"])
def test_client_keywords_reach_the_sdk_translated(client: str, stream: bool) -> None:
    """g4f adds keywords of its own to every call; the provider keeps the SDK's, maps ``proxy``
    and ``timeout``, drops the rest, and always streams from the server."""
    seen: List[opchatgpts.CallOptions] = []

    class Recording(opchatgpts.Opchatgpts):
        url = "http://127.0.0.1:9"

        @classmethod
        def call_options(cls, **kwargs: Any) -> opchatgpts.CallOptions:
            seen.append(super().call_options(**kwargs))
            raise _Recorded

    provider = type("Recorded", (G4FOpchatgpts,), {"backend": Recording})
    g4f_kwargs = {
        "proxy": "http://proxy.example:3128",
        "timeout": 7,
        "max_tokens": 5,
        "stop": ["never"],
        "api_key": "not-for-us",
        "temperature": 0.2,
        "referer": "http://127.0.0.1:9/chat/",
        "max_retries": 0,
    }
    with pytest.raises(_Recorded):
        _client_call(provider, client, stream, MESSAGES, **g4f_kwargs)
    [options] = seen
    assert options.site.url == "http://127.0.0.1:9"
    assert options.site.referer == "http://127.0.0.1:9/chat/"
    assert options.proxy == "http://proxy.example:3128"
    assert options.timeout == opchatgpts.Timeout(connect=7, read=7)
    assert options.retry.max_retries == 0
    assert options.stream is True

    seen.clear()
    with pytest.raises(_Recorded):
        _client_call(provider, client, stream, MESSAGES, timeout=0)  # g4f's "no timeout"
    assert seen[0].timeout == opchatgpts.Timeout()
