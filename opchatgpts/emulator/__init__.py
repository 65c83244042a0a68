"""A local emulator of the AI Engine WordPress plugin's chat REST protocol.

It answers like the recorded plugin versions in ``tests/captures/`` do, one
*generation* at a time:

- ``"open"``: 1.9.x, no nonce needed (what opchatgpts.net ran);
- ``"nonce"``: 2.0.1-2.4.3, the guest nonce is printed into the chatbot page;
- ``"session"``: 2.4.4+ and 3.x, ``POST mwai/v1/start_session`` hands out the nonce.

The stand-in model answers ``Echo: <newMessage>``, one word per ``live`` event, and
echoes attached files as ``[image <mime> <N> bytes]``; it fails on purpose when the
message contains ``FAIL_UPSTREAM``, ``FAIL_429`` or ``FAIL_MIDSTREAM``; ``SLOW``
makes it stream one word every half second.

The package depends on the standard library and aiohttp only, so that it can be
used to test any client, not just this package's. Its modules:

- ``app``: :class:`Emulator`, the site's state and knobs, and its routes;
- ``generations``: what differs between 1.9.x, 2.0-2.4.3 and 2.4.4+/3.x;
- ``submit``: ``chats/submit``; ``model``: the stand-in model;
- ``files``: the ``files/*`` routes; ``uploads``: the stored files and the type check;
  ``forms``: PHP's form parsing;
- ``nonces``: the nonce pair and its checks; ``pages``: the chatbot page;
- ``faults``: the :class:`Faults` knobs; ``wire``: sending answers and event streams;
- ``requestlog``: :class:`RecordedRequest` and the bounded :class:`RequestLog`;
- ``php`` and ``wordpress``: PHP's encodings and WordPress core's own answers.
"""

from __future__ import annotations

from .app import Emulator
from .faults import Faults
from .generations import GENERATIONS, Generation
from .requestlog import RecordedRequest, RequestLog
from .uploads import StoredFile, UploadStore

__all__ = [
    "GENERATIONS",
    "Emulator",
    "Faults",
    "Generation",
    "RecordedRequest",
    "RequestLog",
    "StoredFile",
    "UploadStore",
]
