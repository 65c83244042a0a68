"""opchatgpts: a streaming client for the AI Engine chatbot protocol that opchatgpts.net served.

Quick start::

    import opchatgpts

    with opchatgpts.Client(url="https://example.com") as client:
        print(client.ask("Hello!"))
"""

from ._client import AsyncClient, Client
from ._conversation import Conversation
from ._exceptions import (
    AllSitesFailedError,
    AllSitesUnreachableError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AttachmentError,
    AttachmentTooLargeError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    DiscoveryError,
    FilesNotAcceptedError,
    IncompleteStreamError,
    InternalServerError,
    InvalidAttachmentError,
    InvalidMessagesError,
    InvalidMessagesTypeError,
    NotFoundError,
    OpchatgptsError,
    PermissionDeniedError,
    QueryRejectedError,
    RateLimitError,
    RemoteProtocolError,
    ResponseTooLargeError,
    ServerReportedError,
    StreamError,
    StreamInterruptedError,
    StreamTimeoutError,
    TLSVerificationError,
    TooManyFilesError,
    UploadAuthenticationError,
    UploadRejectedError,
    UploadTooLargeError,
)
from ._logs import configure_from_environment as _configure_logs
from ._models import ChatResult, Done, Event, LiveEvent, Message, MessageLike, TextDelta, Timeout, Usage
from ._options import AsyncCallKwargs, CallKwargs, CallOptions
from ._protocol.discovery import ChatbotConfig
from ._protocol.retry import RetryPolicy
from ._protocol.uploads import Attachment, FileInput, split_image_parts
from ._provider import Opchatgpts, aclose, ask, ask_async
from ._site import SITE_PRESETS, Site
from ._stream import AsyncChatStream, ChatStream
from ._sync import SyncStream
from ._version import __version__

__all__ = [
    "Client",
    "AsyncClient",
    "CallKwargs",
    "AsyncCallKwargs",
    "CallOptions",
    "Opchatgpts",
    "ask",
    "ask_async",
    "aclose",
    "SITE_PRESETS",
    "Site",
    "Timeout",
    "RetryPolicy",
    "SyncStream",
    "ChatStream",
    "AsyncChatStream",
    "Conversation",
    "ChatbotConfig",
    "DiscoveryError",
    "Message",
    "MessageLike",
    "Event",
    "TextDelta",
    "LiveEvent",
    "Done",
    "ChatResult",
    "Usage",
    "Attachment",
    "FileInput",
    "split_image_parts",
    "OpchatgptsError",
    "ClientClosedError",
    "InvalidMessagesError",
    "InvalidMessagesTypeError",
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
    "__version__",
]

# Tracebacks name the public errors (``opchatgpts.NotFoundError``), not the private module
# that defines them.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and issubclass(_value, BaseException):
        _value.__module__ = "opchatgpts"
del _name, _value

_configure_logs()
