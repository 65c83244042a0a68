"""The gpt4free (g4f) integration: ``Opchatgpts`` as a real provider class of the installed g4f.

::

    from g4f.client import Client
    from opchatgpts.g4f import Opchatgpts

    class MySite(Opchatgpts):
        url = "https://example.com"  # any AI Engine site

    reply = Client(provider=MySite).chat.completions.create(model="", messages=[...])

The class subclasses g4f's ``AsyncGeneratorProvider`` and ``ProviderModelMixin`` (the bases of
g4f's own providers; g4f 0.1.x has no mixin) and hands every call to the SDK's gpt4free face,
``opchatgpts.Opchatgpts`` (or the class in ``backend``). ``opchatgpts.Opchatgpts`` itself
already works with g4f 0.1.x's ``ChatCompletion``; today's ``g4f.client.Client`` needs this one.

What it does with g4f's calls:

* **Always streamed from the server.** ``stream=False`` only means that g4f joins the text, so
  a failure is the same error class streamed or not.
* **Errors** are the SDK's own (``opchatgpts.OpchatgptsError`` subclasses), unwrapped.
* **Keywords.** The SDK's own per-call keywords (``referer``, ``bot_id``, ``max_retries``,
  ``headers``...) go through. ``proxy`` is the SDK's ``proxy``, and ``timeout`` (seconds) bounds
  connecting and each wait for the next event, as the SDK's ``timeout=`` does (g4f's 0 or None
  is "not given"). Everything else g4f adds or passes on (``provider``, ``api_key``,
  ``base_url``, ``media``, ``max_tokens``, ``stop``, ``conversation``, ``tools``,
  ``temperature``...) is dropped, as g4f's providers do with keywords they do not use; g4f's
  client applies ``max_tokens`` and ``stop`` to the text itself.
"""

from __future__ import annotations

import logging
from typing import (
    Any,
    AsyncGenerator,
    ClassVar,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Type,
)

try:
    import g4f  # noqa: F401
except ImportError as exc:
    if exc.name != "g4f":
        raise  # g4f is there but one of its own imports failed: show that
    raise ImportError(
        'opchatgpts.g4f needs gpt4free (g4f): pip install "opchatgpts[g4f]"', name="g4f"
    ) from exc

try:  # today's g4f
    from g4f.providers.base_provider import AsyncGeneratorProvider, ProviderModelMixin
except ImportError:  # g4f 0.1.x: the base is in g4f.Provider, and there is no model mixin yet
    from g4f.Provider.base_provider import AsyncGeneratorProvider

    class ProviderModelMixin:  # type: ignore[no-redef]
        """Stands in for g4f's model mixin on g4f 0.1.x."""


from . import _provider
from ._models import MessageLike
from ._options import CallKwargs, Unpack

__all__ = ["Opchatgpts", "SDK_KEYWORDS"]

log = logging.getLogger("opchatgpts")

#: The keywords of a g4f call that go on to the SDK: its per-call keywords, except ``stream``
#: and ``proxy``, which the provider methods take as parameters.
SDK_KEYWORDS: FrozenSet[str] = frozenset(CallKwargs.__optional_keys__) - {"stream", "proxy"}


class Opchatgpts(AsyncGeneratorProvider, ProviderModelMixin):  # type: ignore[misc]  # g4f has no types
    """An AI Engine chatbot site (opchatgpts.net by default) as a gpt4free provider.

    A subclass that sets ``url`` targets that site. One that sets ``backend`` to a subclass of
    ``opchatgpts.Opchatgpts`` uses that class's settings: ``from_page`` makes one from a
    chatbot page.
    """

    #: The SDK's provider class that answers the calls.
    backend: ClassVar[Type[_provider.Opchatgpts]] = _provider.Opchatgpts

    url: ClassVar[str] = _provider.Opchatgpts.url
    label: ClassVar[str] = "Opchatgpts (AI Engine)"
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    supports_gpt_35_turbo: ClassVar[bool] = True
    supports_gpt_4: ClassVar[bool] = False
    # The site's bot settings choose the model; a model name is accepted and not sent.
    default_model: ClassVar[str] = "gpt-3.5-turbo"
    models: ClassVar[List[str]] = [default_model]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "backend" in cls.__dict__ and "url" not in cls.__dict__:
            cls.url = cls.backend.url  # a new backend brings its site

    @classmethod
    def from_page(cls, page_url: str, **kwargs: Unpack[CallKwargs]) -> Type[Opchatgpts]:
        """A provider class for the site whose chatbot page is ``page_url`` (see
        ``opchatgpts.Opchatgpts.from_page``)."""
        backend = cls.backend.from_page(page_url, **kwargs)
        return type(f"{cls.__name__}FromPage", (cls,), {"backend": backend})

    @classmethod
    def sdk_kwargs(cls, g4f_kwargs: Mapping[str, Any]) -> Dict[str, Any]:
        """The SDK's keywords for one g4f call: the ones it takes, and this class's site."""
        kwargs = {name: value for name, value in g4f_kwargs.items() if name in SDK_KEYWORDS}
        if kwargs.get("timeout", 0) in (None, 0):
            kwargs.pop("timeout", None)  # g4f's "no timeout given"
        if "url" not in kwargs and cls.url != cls.backend.url:
            kwargs["url"] = cls.url
        dropped = sorted(name for name in g4f_kwargs if name not in SDK_KEYWORDS)
        if dropped:
            log.debug("%s: not used by opchatgpts: %s", cls.__name__, ", ".join(dropped))
        return kwargs

    @classmethod
    def create_async_generator(
        cls,
        model: str,
        messages: Sequence[MessageLike],
        stream: bool = True,
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> AsyncGenerator[str, None]:
        """Stream the answer as text deltas (g4f's async entry point)."""
        return cls.backend.create_async_generator(
            model, messages, proxy=proxy or None, stream=True, **cls.sdk_kwargs(kwargs)
        )

    @classmethod
    def create_completion(
        cls,
        model: str,
        messages: Sequence[MessageLike],
        stream: bool = True,
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        """Stream the answer as text deltas, blocking (g4f's sync entry point).

        It runs on the SDK's own loop thread (or ``transport="requests"``), so a blocking g4f
        call neither starts an event loop of its own nor needs one free in the calling thread.
        """
        return cls.backend.create_completion(
            model, messages, True, proxy=proxy or None, **cls.sdk_kwargs(kwargs)
        )

    @classmethod
    async def create_async(
        cls, model: str, messages: Sequence[MessageLike], proxy: Optional[str] = None, **kwargs: Any
    ) -> str:
        """The whole answer, awaited (g4f 0.1.x's ``ChatCompletion.create_async``)."""
        parts = [part async for part in cls.create_async_generator(model, messages, True, proxy, **kwargs)]
        return "".join(parts)
