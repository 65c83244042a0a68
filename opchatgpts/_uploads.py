"""The upload step of a call with files: each file to ``files/upload``, before the chat request.

It runs inside the call (``_engine.stream_batches``), over the call's transport, timeouts,
retry policy, TLS and proxy settings, so every client, face and transport shares it. The
site's plugin generation decides the upload fields, the nonce and the submit fields; it is
learned the way the chat learns its nonce, and kept per site (``SiteAuth.generation``):

* an upload without a nonce that succeeds: ``open`` (1.9.x; 2.0+ refuse it with 401);
* a ``401``/``403`` nonce refusal gets a nonce as the chat does: from ``start_session``
  (``session``, 2.4.4+), else from the chatbot page (``nonce``, 2.0-2.4.3); then one resend;
* a nonce the caller or a page gave, with several files: ``start_session`` is asked once,
  to tell 2.4.4+ (several files per message) from 2.0-2.4.3 (one).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._credentials import SiteAuth, mask
from ._exceptions import APIStatusError, AuthenticationError, OpchatgptsError
from ._http import Call
from ._models import MessageLike
from ._nonces import GUEST_HEADERS, START_SESSION_ROUTE, json_object, no_nonce, obtain_credentials
from ._protocol.request import HTTPRequest, split_messages
from ._protocol.response import NONCE_ERROR_CODES
from ._protocol.uploads import (
    GENERATION_NAMES,
    Attachment,
    build_upload_request,
    check_generation_takes,
    parse_upload_answer,
    submit_fields,
    upload_error,
)

__all__ = ["upload_files"]

log = logging.getLogger("opchatgpts")

Uploaded = List[Tuple[str, str]]  # (label, file id)


async def upload_files(call: Call, auth: SiteAuth, messages: Sequence[MessageLike]) -> Dict[str, Any]:
    """Upload the call's files to its site; return the chat request's fields naming them.

    Files the site's generation cannot take (more than one before 2.4.4) are refused
    before the chat request, with ``TooManyFilesError``; if the generation was learned by
    uploading the first file, the error says so.
    """
    options = call.options
    attachments = options.files
    site = options.site
    has_text = bool(split_messages(messages, site, allow_empty=True)[1].strip())
    nonce = options.nonce or auth.credentials.nonce or site.nonce
    generation = auth.generation
    if generation is None and nonce and len(attachments) > 1:
        generation = await _ask_start_session(call, auth)
    check_generation_takes(generation, attachments, has_text=has_text, site_url=site.url)
    uploaded: Uploaded = []
    for attachment in attachments:
        file_id, nonce = await _upload(call, auth, attachment, nonce, uploaded)
        uploaded.append((attachment.label, file_id))
        log.debug("uploaded %s (%d bytes) as %s", attachment.label, attachment.size, file_id)
        if generation is None and auth.generation is not None:
            generation = auth.generation
            check_generation_takes(
                generation, attachments, has_text=has_text, site_url=site.url, uploaded=uploaded
            )
    _note_dropped(generation, attachments)
    return submit_fields(generation, [file_id for _, file_id in uploaded])


async def _upload(
    call: Call, auth: SiteAuth, attachment: Attachment, nonce: Optional[str], uploaded: Uploaded
) -> Tuple[str, Optional[str]]:
    """Upload one file, getting a nonce and resending once if the site asks for one.
    Returns its id and the nonce that worked."""
    options = call.options
    try:
        return await _send(call, auth, attachment, nonce, uploaded), nonce
    except AuthenticationError as exc:
        if exc.code not in NONCE_ERROR_CODES:
            raise upload_error(exc, attachment, uploaded) from None
        refused = exc
    if nonce:
        site, code = options.site.url, refused.code
        log.info("%s refused the upload's nonce %s (%s); getting a new one", site, mask(nonce), code)
    else:
        log.debug("%s wants a nonce for the upload (%s); getting one", options.site.url, refused.code)
    try:
        credentials = await auth.refresh(lambda: obtain_credentials(call, refused), rejected=nonce)
    except AuthenticationError as exc:
        raise upload_error(exc, attachment, uploaded) from exc
    except OpchatgptsError as reason:
        missing = no_nonce(options, refused, f"the nonce request failed: {reason}")
        raise upload_error(missing, attachment, uploaded) from reason
    if credentials.nonce == nonce:
        missing = no_nonce(options, refused, "the site refused the nonce it had just issued")
        raise upload_error(missing, attachment, uploaded)
    try:
        file_id = await _send(call, auth, attachment, credentials.nonce, uploaded)
    except AuthenticationError as exc:
        raise upload_error(exc, attachment, uploaded) from None
    return file_id, credentials.nonce


async def _send(
    call: Call, auth: SiteAuth, attachment: Attachment, nonce: Optional[str], uploaded: Uploaded
) -> str:
    """One upload request (under the call's retries and clock); its file id. A nonce
    refusal is raised as it is, for ``_upload`` to handle."""
    options = call.options
    request = build_upload_request(options.site, attachment, nonce=nonce, extra_headers=options.headers)
    try:
        _, _, body = await call.fetch(request)
    except AuthenticationError:
        raise
    except APIStatusError as exc:
        raise upload_error(exc, attachment, uploaded) from None
    file_id = parse_upload_answer(body, attachment, request.url)
    if not nonce:
        auth.learn_generation("open")  # only 1.9.x store a file for a guest without a nonce
    return file_id


async def _ask_start_session(call: Call, auth: SiteAuth) -> str:
    """Whether the site has ``start_session`` (2.4.4+) or not (2.0-2.4.3); its nonce and
    session are kept."""
    site = call.options.site
    request = HTTPRequest("POST", site.endpoint(START_SESSION_ROUTE), GUEST_HEADERS)
    try:
        _, _, body = await call.fetch(request)
    except APIStatusError as exc:
        log.info("%s has no start_session (%s): AI Engine 2.0-2.4.3", site.url, exc)
        auth.learn_generation("nonce")
        return "nonce"
    answer = json_object(body)
    nonce, session = answer.get("restNonce"), answer.get("sessionId")
    if answer.get("success") is True and isinstance(nonce, str) and nonce:
        auth.remember(nonce=nonce, session_id=session if isinstance(session, str) else None)
        auth.learn_generation("session")
        return "session"
    auth.learn_generation("nonce")
    return "nonce"


def _note_dropped(generation: Optional[str], attachments: Sequence[Attachment]) -> None:
    """Log what the plugin will do to files that are not images (it says nothing)."""
    others = [a.label for a in attachments if not a.mime.startswith("image/")]
    if not others:
        return
    name = GENERATION_NAMES.get(generation or "", "")
    if generation == "open":
        log.info("%s sends every file to the model as an image/jpeg: %s", name, ", ".join(others))
    elif generation == "session":
        log.info("%s drops files that are not images on Chat Completions bots: %s", name, ", ".join(others))
