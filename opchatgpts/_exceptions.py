"""Every error the SDK raises.

The class says who is to blame and when it happened:

* ``InvalidMessagesError`` / ``TypeError`` subclasses: the caller's input, before any I/O.
* ``APIConnectionError`` / ``APITimeoutError``: the connection could not be set up (after retries).
* ``APIStatusError`` and its family: the server answered the request with a refusal.
* ``StreamError`` and its family (all ``RuntimeError``): the answer had started and then broke.
* ``AttachmentError`` and its family: a file of the call (``files=``, or an image in the
  messages); each names the file. Its subclasses are also the error of their kind above:
  ``InvalidAttachmentError`` an ``InvalidMessagesError`` (before any I/O),
  ``UploadRejectedError`` an ``APIStatusError``.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

from multidict import CIMultiDict

__all__ = [
    "OpchatgptsError",
    "InvalidMessagesError",
    "InvalidMessagesTypeError",
    "DiscoveryError",
    "ClientClosedError",
    "APIConnectionError",
    "APITimeoutError",
    "TLSVerificationError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "QueryRejectedError",
    "RateLimitError",
    "InternalServerError",
    "StreamError",
    "ServerReportedError",
    "StreamInterruptedError",
    "IncompleteStreamError",
    "RemoteProtocolError",
    "ResponseTooLargeError",
    "StreamTimeoutError",
    "AllSitesFailedError",
    "AllSitesUnreachableError",
    "AttachmentError",
    "InvalidAttachmentError",
    "AttachmentTooLargeError",
    "FilesNotAcceptedError",
    "TooManyFilesError",
    "UploadRejectedError",
    "UploadTooLargeError",
    "UploadAuthenticationError",
]


class OpchatgptsError(Exception):
    """Base class of every error raised by opchatgpts.

    ``url`` is the URL the error concerns (empty when none does), and ``attempts`` how many
    times the request was tried.
    """

    url: str = ""
    attempts: int = 1


# -- the caller's mistakes, found before any I/O ---------------------------------------------


class InvalidMessagesError(OpchatgptsError, ValueError):
    """The messages cannot be sent: empty, missing a field, or no user turn at the end."""


class InvalidMessagesTypeError(OpchatgptsError, TypeError):
    """The messages (or one of their fields) have the wrong type."""


class DiscoveryError(OpchatgptsError, ValueError):
    """A page cannot configure a client: it is not HTML, or it shows no chatbot."""


class ClientClosedError(OpchatgptsError, RuntimeError):
    """The client was closed: before the call, or while the call was under way."""


# -- failures before the answer started -------------------------------------------------------


class APIConnectionError(OpchatgptsError, ConnectionError):
    """The request could not reach the server (refused, reset, DNS, TLS, proxy...)."""

    def __init__(self, message: str, *, url: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class APITimeoutError(APIConnectionError, TimeoutError):
    """No response headers arrived within the connect or total timeout."""


class TLSVerificationError(APIConnectionError):
    """The server's TLS certificate could not be verified. Never retried.

    Pass ``verify=False`` (or your own ``ssl.SSLContext``) only for a server you trust.
    """


class APIStatusError(OpchatgptsError):
    """The server answered with a status that is not a successful chat answer.

    Attributes:
        status_code: the HTTP status.
        message: the server's message (from its JSON body) or a summary of the body.
        code: WordPress's error code (``rest_forbidden``, ...) when the body carried one.
        body: the decoded JSON body, or the raw text when it was not JSON.
        headers: the response headers.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: Optional[str] = None,
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.body = body
        #: Case-insensitive, as HTTP headers are.
        self.headers: Mapping[str, str] = CIMultiDict(headers or {})
        self.url = url

    def __str__(self) -> str:
        if self.status_code == 200:  # a refusal inside a successful answer: the status says nothing
            return self.message
        code = f" {self.code}" if self.code else ""
        return f"HTTP {self.status_code}{code}: {self.message}"


class BadRequestError(APIStatusError):
    """400: the server could not read the request (``rest_invalid_json``...)."""


class AuthenticationError(APIStatusError):
    """401/403 from WordPress's nonce check, or no nonce could be obtained."""


class PermissionDeniedError(APIStatusError):
    """403 that is not a nonce refusal, e.g. a firewall or CDN block page."""


class NotFoundError(APIStatusError):
    """404: no AI Engine route at this URL."""


class QueryRejectedError(APIStatusError):
    """The plugin refused the query: ``{"success": false, "message": ...}``.

    Empty message, unknown bot, moderation, usage limits, upstream model errors. Retrying the
    same query soon does not help, so it is never retried.
    """


class RateLimitError(APIStatusError):
    """429 from the site or a proxy in front of it.

    ``retry_after`` holds the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx that is not a query rejection."""


# -- failures after the answer started --------------------------------------------------------


class StreamError(OpchatgptsError, RuntimeError):
    """The answer had started and then failed. Never retried: text may already be delivered."""


class ServerReportedError(StreamError):
    """The server sent an ``error`` event, e.g. ``"From OpenAI: ..."``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StreamInterruptedError(StreamError, ConnectionError):
    """The connection broke in the middle of the answer."""


class IncompleteStreamError(StreamError):
    """The body ended cleanly but without the ``end`` event."""


class RemoteProtocolError(StreamError):
    """The server sent something that is not the AI Engine protocol."""


class ResponseTooLargeError(RemoteProtocolError):
    """A line or a body exceeded the configured safety cap."""


class StreamTimeoutError(StreamError, TimeoutError):
    """No event arrived within the read timeout, or the total timeout ran out mid-answer."""


# -- a client with several sites --------------------------------------------------------------


class AllSitesFailedError(OpchatgptsError):
    """Every site of a client with several failed before any text arrived.

    ``errors`` holds each site's URL and its error, in the order they were tried; the
    message names them one per line.
    """

    def __init__(self, errors: Sequence[Tuple[str, BaseException]]) -> None:
        self.errors: List[Tuple[str, BaseException]] = list(errors)
        lines = "".join(f"\n  {url}: {type(error).__name__}: {error}" for url, error in errors)
        self.message = f"all {len(errors)} sites failed:{lines}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class AllSitesUnreachableError(AllSitesFailedError, APIConnectionError):
    """Every site failed to connect or timed out: also an ``APIConnectionError``, so code
    that handles a connection failure handles this one too."""

    def __init__(self, errors: Sequence[Tuple[str, BaseException]]) -> None:
        AllSitesFailedError.__init__(self, errors)
        self.url = ""
        self.attempts = sum(getattr(error, "attempts", 1) for _, error in errors)


# -- files sent with a call -------------------------------------------------------------------


class AttachmentError(OpchatgptsError):
    """A file sent with a call could not be sent. ``filename`` names it (the path or name
    the caller gave); the message names it too.

    ``uploaded`` lists the ``(filename, file id)`` of the files of the call that had been
    uploaded when it failed: they stay on the site, unused (the plugin cannot delete them
    for a guest on most versions).
    """

    filename: str = ""
    uploaded: Tuple[Tuple[str, str], ...] = ()


class InvalidAttachmentError(AttachmentError, InvalidMessagesError):
    """A file cannot be read, or an image part cannot be decoded. Raised before any I/O."""

    def __init__(self, message: str, *, filename: str) -> None:
        super().__init__(message)
        self.filename = filename


class AttachmentTooLargeError(InvalidAttachmentError):
    """A file is over ``max_file_bytes`` (default 20 MiB). Raised before any I/O."""


class FilesNotAcceptedError(AttachmentError):
    """The site's plugin version cannot take the files this way (e.g. AI Engine 1.9.x
    refuses a message without text). Raised before the chat request is sent."""

    def __init__(
        self, message: str, *, filename: str = "", uploaded: Sequence[Tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.filename = filename
        self.uploaded = tuple(uploaded)


class TooManyFilesError(FilesNotAcceptedError):
    """More files than the site's plugin version takes with one message (one before
    AI Engine 2.4.4). Raised before the chat request is sent."""


class UploadRejectedError(AttachmentError, APIStatusError):
    """The site refused to store a file (``files/upload``), e.g. ``Invalid file type.``"""

    def __init__(
        self, message: str, *, filename: str, uploaded: Sequence[Tuple[str, str]] = (), **kwargs: Any
    ) -> None:
        APIStatusError.__init__(self, message, **kwargs)
        self.filename = filename
        self.uploaded = tuple(uploaded)


class UploadTooLargeError(UploadRejectedError):
    """The site could not take a file that big: over its PHP ``upload_max_filesize`` (an
    HTML error page on AI Engine 2.x and 3.x, ``Could not move the file.`` on 1.9.x) or
    ``post_max_size`` (``No file provided.``), or its web server's body limit (413)."""


class UploadAuthenticationError(UploadRejectedError, AuthenticationError):
    """The site refused the nonce sent with an upload, and no nonce it accepts could be had."""


def all_sites_failed(errors: Sequence[Tuple[str, BaseException]]) -> AllSitesFailedError:
    """The error for sites that all failed: ``AllSitesUnreachableError`` when every failure
    was a connection failure or a timeout, else ``AllSitesFailedError``."""
    if errors and all(isinstance(error, APIConnectionError) for _, error in errors):
        return AllSitesUnreachableError(errors)
    return AllSitesFailedError(errors)
