"""What differs between the plugin generations the emulator plays.

Each :class:`Generation` is one column of the tables in ``PROTOCOL.md`` and
``captures/attachments/FINDINGS.md``: who may call, how a message is refused, how
errors read, and everything about attachments. The rest of the emulator asks these
values instead of comparing generation names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["GENERATIONS", "Generation", "traits_of"]


@dataclass(frozen=True)
class Generation:
    """The behaviour of one plugin generation, as the captures show it."""

    name: str
    """``"open"``, ``"nonce"`` or ``"session"``."""
    versions: str
    """The AI Engine versions that behave like this."""

    # ---- who may call ----------------------------------------------------------
    nonce_required: bool
    """The plugin's routes want a valid ``X-WP-Nonce`` header (401 ``rest_forbidden`` without)."""
    start_session: bool
    """``POST mwai/v1/start_session`` exists and hands out the nonce."""
    new_token: bool
    """A previous-tick nonce is answered with ``new_token`` (3.x nonce rotation)."""

    # ---- chats/submit ----------------------------------------------------------
    message_limit: Literal["none", "bytes", "characters"]
    """How the server measures ``newMessage`` against the bot's ``textInputMaxLength``.

    ``"none"``: not at all (1.9.x); ``"bytes"``: PHP's ``strlen`` (2.x); ``"characters"``:
    ``mb_strlen`` (3.x). Over the limit, the query is refused before streaming starts.
    """
    unknown_bot: Literal["refuse", "default"]
    """An unknown ``botId`` is refused (1.9.x, 2.x) or answered by the default bot (3.x)."""
    upstream_prefix: str
    """How the error texts name the upstream (the environment's name on 3.x)."""
    stream_error: str
    """The ``error`` event's text for a failed upstream call; a ``str.format`` template with
    ``prefix``, ``message``, ``code`` and ``type``."""
    one_shot_error: str
    """The JSON refusal's message for a failed upstream call; the same fields and ``upstream``,
    the upstream's JSON error body."""
    rich_payload: bool
    """The final answer also has ``actions``, ``shortcuts``, ``blocks``, usage price and
    ``responseId`` (3.x)."""
    event_logs: bool
    """Can stream rich ``live`` events such as the ``status`` one (2.8.3+ with event logs on)."""

    # ---- attachments -------------------------------------------------------------
    purpose_required: bool
    """``files/upload`` wants a ``purpose`` form field (2.0+); 1.9.x reads only ``file``."""
    upload_names: Literal["random", "original", "ref_id"]
    """The stored file's name: 20 random letters (1.9.x), the uploaded name made unique
    (2.x, so ``id = md5(url)`` is predictable and reused), or the random id (3.x)."""
    extra_extensions: Mapping[str, str]
    """File extensions allowed on top of WordPress's list (3.x: audio for transcription)."""
    oversize_upload: Literal["could_not_move", "fatal"]
    """A file over ``upload_max_filesize``: 500 "Could not move the file." (1.9.x) or a PHP
    fatal error in ``copy()``, a 500 "critical error" (2.x, 3.x)."""
    upload_owner: bool
    """The ``mwai_session_id`` cookie owns an upload, and one is minted if missing (3.x)."""
    file_field: str
    """The submit field naming one uploaded file."""
    file_list_field: str | None
    """The submit field naming several; it wins when it is a non-empty list (2.4.4+)."""
    file_without_message: bool
    """An empty ``newMessage`` is accepted when a file comes with it (2.x, 3.x)."""
    unknown_file: Literal["fatal", "ignore"]
    """A file id that names no stored file: a PHP fatal error, HTTP 500 even when streaming
    (1.9.x, 2.x), or silently no file (3.x)."""
    attachment_mime: Literal["jpeg", "real", "images"]
    """What the model gets: every file labelled ``image/jpeg`` (1.9.x), every file with its
    real type (2.x), or images only, other files silently dropped (3.x)."""
    purpose_after_use: str | None
    """The ``purpose`` a file is given once a submit used it (as ``files/list`` shows)."""
    files_delete: Literal["invalid_handler", "numeric", "owned"]
    """``files/delete``: 500 ``rest_invalid_handler`` (1.9.x); by numeric database id, anyone's,
    always "success" (2.x); by id, own files only (3.x)."""
    files_list: Literal["no_route", "everyone", "fatal"]
    """``files/list``: 404 (1.9.x); every user's files (2.x); a fatal error for guests (3.x)."""


_AUDIO_EXTENSIONS = {
    extension: "audio/" + extension
    for extension in ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
}

_OPEN = Generation(
    name="open",
    versions="1.6.76 - 1.9.x",
    nonce_required=False,
    start_session=False,
    new_token=False,
    message_limit="none",
    unknown_bot="refuse",
    upstream_prefix="From Azure: ",
    stream_error="{prefix}Error {code}: {message}",
    one_shot_error="{prefix}{message}",
    rich_payload=False,
    event_logs=False,
    purpose_required=False,
    upload_names="random",
    extra_extensions={},
    oversize_upload="could_not_move",
    upload_owner=False,
    file_field="newImageId",
    file_list_field=None,
    file_without_message=False,
    unknown_file="fatal",
    attachment_mime="jpeg",
    purpose_after_use=None,
    files_delete="invalid_handler",
    files_list="no_route",
)

_NONCE = Generation(
    name="nonce",
    versions="2.0.1 - 2.4.3",
    nonce_required=True,
    start_session=False,
    new_token=False,
    message_limit="bytes",
    unknown_bot="refuse",
    upstream_prefix="From OpenAI: ",
    stream_error="{prefix}Error: {message} ({code}) ({type})",
    one_shot_error="{prefix}{message}",
    rich_payload=False,
    event_logs=False,
    purpose_required=True,
    upload_names="original",
    extra_extensions={},
    oversize_upload="fatal",
    upload_owner=False,
    file_field="newFileId",
    file_list_field=None,
    file_without_message=True,
    unknown_file="fatal",
    attachment_mime="real",
    purpose_after_use="vision",
    files_delete="numeric",
    files_list="everyone",
)

_SESSION = Generation(
    name="session",
    versions="2.4.4 - 3.x",
    nonce_required=True,
    start_session=True,
    new_token=True,
    message_limit="characters",
    unknown_bot="default",
    upstream_prefix="RealPeer: ",
    stream_error="{prefix}Error: {message} ({code}) ({type})",
    one_shot_error="{prefix}{upstream}",
    rich_payload=True,
    event_logs=True,
    purpose_required=True,
    upload_names="ref_id",
    extra_extensions=_AUDIO_EXTENSIONS,
    oversize_upload="fatal",
    upload_owner=True,
    file_field="newFileId",
    file_list_field="newFileIds",
    file_without_message=True,
    unknown_file="ignore",
    attachment_mime="images",
    purpose_after_use="analysis",
    files_delete="owned",
    files_list="fatal",
)

_BY_NAME = {g.name: g for g in (_OPEN, _NONCE, _SESSION)}

GENERATIONS = tuple(_BY_NAME)
"""The plugin generations the emulator can play: 1.9.x, 2.0.1-2.4.3, 2.4.4+/3.x."""


def traits_of(name: str) -> Generation:
    """The :class:`Generation` called ``name``; ValueError for an unknown name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"generation must be one of {GENERATIONS}, not {name!r}") from None
