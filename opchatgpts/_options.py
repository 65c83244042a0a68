"""The settings of a call: every keyword typed, checked once, merged per call.

A client resolves its constructor's keywords into one ``CallOptions``; a call's own keywords
are merged over it. Both use the same names (``CallKwargs``), so a typo is caught by mypy
(the keywords are a ``TypedDict``) and, at run time, by ``merge`` before any I/O.
"""

from __future__ import annotations

import dataclasses
import difflib
import ssl
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, Literal, Mapping, Optional, Sequence, Tuple, TypedDict, Union

from ._files import load_files
from ._models import Timeout
from ._protocol.decoder import DEFAULT_MAX_LINE_BYTES
from ._protocol.retry import RetryPolicy
from ._protocol.uploads import DEFAULT_MAX_FILE_BYTES, Attachment, FileInput
from ._site import Site, SiteLike

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = [
    "TransportName",
    "TRANSPORTS",
    "AsyncCallKwargs",
    "GeneratorKwargs",
    "CompletionKwargs",
    "CallKwargs",
    "AsyncClientSettings",
    "ClientSettings",
    "CallOptions",
    "SITE_KEYS",
    "Unpack",
    "unexpected_keywords",
    "with_files_loaded",
]

#: How blocking calls reach the network.
TransportName = Literal["aiohttp", "requests"]
TRANSPORTS: Tuple[str, ...] = ("aiohttp", "requests")

#: The keywords that describe the site (the fields of ``Site``).
SITE_KEYS = ("rest_url", "bot_id", "custom_id", "context_id", "session", "referer")


class _SiteFields(TypedDict, total=False):
    rest_url: Optional[str]
    bot_id: Optional[str]
    custom_id: Optional[str]
    context_id: Optional[int]
    session: Optional[str]
    referer: Optional[str]


class _Connection(TypedDict, total=False):
    timeout: Union[None, float, Timeout]
    trust_env: bool
    max_retries: int
    retry: RetryPolicy
    verify: Union[bool, ssl.SSLContext]
    headers: Optional[Mapping[str, str]]
    extra_body: Optional[Mapping[str, Any]]
    max_line_bytes: int
    nonce: Optional[str]
    max_file_bytes: int


class _Common(_SiteFields, _Connection, total=False):
    url: SiteLike
    chat_id: Optional[str]
    files: Optional[Sequence[FileInput]]


class AsyncCallKwargs(_Common, total=False):
    """The keyword arguments of every async call."""

    stream: bool
    proxy: Optional[str]


class CallKwargs(AsyncCallKwargs, total=False):
    """The keyword arguments of every blocking call: the async ones, and ``transport``."""

    transport: TransportName


class GeneratorKwargs(_Common, total=False):
    """``create_async_generator``'s keywords (``proxy`` is a parameter of its own)."""

    stream: bool
    transport: TransportName


class CompletionKwargs(_Common, total=False):
    """``create_completion``'s keywords (``stream`` and ``proxy`` are parameters of their own)."""

    transport: TransportName


class AsyncClientSettings(_SiteFields, _Connection, total=False):
    """``AsyncClient``'s keyword arguments, after ``url``."""

    sites: Sequence[SiteLike]
    stream: bool
    proxy: Optional[str]
    max_connections: int
    failover_cooldown: float


class ClientSettings(AsyncClientSettings, total=False):
    """``Client``'s keyword arguments, after ``url``."""

    transport: TransportName


@dataclass(frozen=True)
class CallOptions:
    """Everything about one call except the messages, checked.

    ``chat_id`` ``None`` means a fresh random id for each call. ``files`` are the call's
    files, read when the call was made; a client's own options never have any.
    """

    site: Site
    chat_id: Optional[str] = None
    stream: bool = True
    timeout: Timeout = Timeout()
    retry: RetryPolicy = RetryPolicy()
    proxy: Optional[str] = None
    verify: Union[bool, ssl.SSLContext] = True
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    nonce: Optional[str] = None
    transport: TransportName = "aiohttp"
    extra_body: Optional[Mapping[str, Any]] = None
    headers: Optional[Mapping[str, str]] = None
    trust_env: bool = True
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    files: Tuple[Attachment, ...] = ()

    def __repr__(self) -> str:
        # Never the nonce, the proxy (it may hold a password) or the headers.
        return f"CallOptions(site={self.site!r}, chat_id={self.chat_id!r}, stream={self.stream})"

    def merge(self, changes: Mapping[str, Any]) -> "CallOptions":
        """These options with ``changes`` (call keywords) applied, each one checked.

        An unknown keyword is a ``TypeError`` that lists the valid ones, close matches first.
        ``files`` are read here (see ``with_files_loaded``).
        """
        if not changes:
            return self
        unknown = [name for name in changes if name not in _VALID]
        if unknown:
            raise TypeError(unexpected_keywords(unknown, _VALID))
        values: Dict[str, Any] = {}
        for name, value in changes.items():
            check = _CHECKS.get(name)
            values[name] = check(value) if check is not None else value
        if "files" in values:
            values["files"] = load_files(values["files"], values.get("max_file_bytes", self.max_file_bytes))
        site = self.site
        if "url" in values:
            site = _site_at(values.pop("url"), site)
        site_changes = {key: values.pop(key) for key in SITE_KEYS if key in values}
        if site_changes:
            site = dataclasses.replace(site, **site_changes)
        retry = values.pop("retry", self.retry)
        if "max_retries" in values:
            retry = dataclasses.replace(retry, max_retries=values.pop("max_retries"))
        return dataclasses.replace(self, site=site, retry=retry, **values)


def with_files_loaded(changes: Mapping[str, Any], base: CallOptions) -> Mapping[str, Any]:
    """``changes`` with their ``files`` read once (as ``Attachment`` values), so that
    merging them over several sites' options reads each file once."""
    if changes.get("files") is None:
        return changes
    limit = _CHECKS["max_file_bytes"](changes.get("max_file_bytes", base.max_file_bytes))
    return {**changes, "files": load_files(changes["files"], limit)}


def unexpected_keywords(unknown: Any, valid: Any) -> str:
    """The message for unknown keyword arguments: each one, its close matches, then the
    valid names."""
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    plural = "s" if len(parts) > 1 else ""
    return (
        f"unexpected keyword argument{plural} {', '.join(parts)}; "
        f"valid keywords: {', '.join(sorted(valid))}"
    )


def _site_at(url: Any, current: Site) -> Site:
    if isinstance(url, Site):
        return url
    if url == current.url:
        return current  # the same site keeps what was learned about it (from_page)
    return Site.for_url(url)


def _url(value: Any) -> SiteLike:
    if isinstance(value, (str, Site)):
        return value
    raise TypeError(f"url must be a URL string or a Site, not {type(value).__name__}")


def _optional_int(name: str) -> Callable[[Any], Optional[int]]:
    def check(value: Any) -> Optional[int]:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        return value

    return check


def _optional_str(name: str) -> Callable[[Any], Optional[str]]:
    def check(value: Any) -> Optional[str]:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string, not {type(value).__name__}")
        return value

    return check


def _mapping(name: str) -> Callable[[Any], Optional[Mapping[str, Any]]]:
    def check(value: Any) -> Optional[Mapping[str, Any]]:
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a mapping, not {type(value).__name__}")
        return value

    return check


def _positive_int(name: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
        return value

    return check


def _retry(value: Any) -> RetryPolicy:
    if not isinstance(value, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, not {type(value).__name__}")
    return value


def _max_retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_retries must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"max_retries must be >= 0, got {value!r}")
    return value


def _verify(value: Any) -> Union[bool, ssl.SSLContext]:
    if not isinstance(value, (bool, ssl.SSLContext)):
        raise TypeError(f"verify must be True, False or an ssl.SSLContext, not {type(value).__name__}")
    return value


def _proxy(value: Any) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise TypeError("proxy must be a URL string such as 'http://host:3128'")
    return value or None


def _transport(value: Any) -> TransportName:
    if value not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, not {value!r}")
    return value  # type: ignore[no-any-return]


def _stream(value: Any) -> bool:
    return bool(value)


def _flag(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, not {type(value).__name__}")
        return value

    return check


_CHECKS: Dict[str, Callable[[Any], Any]] = {
    "url": _url,
    "rest_url": _optional_str("rest_url"),
    "bot_id": _optional_str("bot_id"),
    "custom_id": _optional_str("custom_id"),
    "context_id": _optional_int("context_id"),
    "session": _optional_str("session"),
    "referer": _optional_str("referer"),
    "chat_id": _optional_str("chat_id"),
    "nonce": _optional_str("nonce"),
    "stream": _stream,
    "timeout": Timeout.coerce,
    "max_retries": _max_retries,
    "retry": _retry,
    "proxy": _proxy,
    "verify": _verify,
    "headers": _mapping("headers"),
    "extra_body": _mapping("extra_body"),
    "max_line_bytes": _positive_int("max_line_bytes"),
    "max_file_bytes": _positive_int("max_file_bytes"),
    "files": lambda value: value,  # read, and checked, by merge once max_file_bytes is known
    "transport": _transport,
    "trust_env": _flag("trust_env"),
}
_VALID = frozenset(_CHECKS)
