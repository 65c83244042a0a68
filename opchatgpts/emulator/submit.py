"""``chats/submit``: the plugin's checks and refusals, then the answer, streamed or whole.

In order, as the plugin decides:

1. a body that is not JSON: 400 ``rest_invalid_json``; no nonce where one is
   needed: 401;
2. no bot, an empty message (without a file, where a file may stand in for it) or
   one over 65536 bytes: 403 "Sorry, your query has been rejected.", plain JSON even
   when streaming;
3. an unknown bot (1.9.x, 2.x) or a message over the bot's ``textInputMaxLength``
   (2.x, 3.x): refused before streaming starts, so a streaming request gets its
   ``error`` event in a ``200 application/json`` body; a one-shot one a 500 refusal;
4. a file id that names nothing: a PHP fatal error on 1.9.x and 2.x (500 JSON, even
   when streaming), nothing on 3.x;
5. the stand-in model's answer, or its failure.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from . import model
from .faults import apply_event_faults
from .generations import Generation
from .nonces import NonceCheck
from .php import decode_json, is_json_content_type, php_json, php_string, php_truthy
from .state import SiteState
from .uploads import StoredFile
from .wire import (
    Context,
    Event,
    error_event,
    event_line,
    pause,
    reset,
    send,
    send_error_json,
    send_fatal,
    send_json,
    stream,
)
from .wordpress import INVALID_JSON, JSON_TYPE, NOT_ALLOWED

__all__ = ["REJECTED", "SERVER_MESSAGE_LIMIT", "handle_submit"]

REJECTED = "Sorry, your query has been rejected."
"""The plugin's refusal text."""
SERVER_MESSAGE_LIMIT = 65536
"""The plugin's hard cap on ``newMessage``, in bytes."""
INSTRUCTIONS = "Converse as if you were an AI assistant. Be friendly, creative."
"""The bot's instructions (the system message the model gets)."""
ENV_ID = "emulator"
"""The id of the AI environment the emulated bots use."""
_BLANKS = " \t\n\r\0\x0b"  # what PHP's trim() strips


async def handle_submit(
    site: SiteState, request: web.Request, body: bytes, nonces: NonceCheck, context: Context
) -> web.StreamResponse:
    """Answer one ``POST chats/submit``."""
    traits = site.traits
    params: dict[str, Any] = {}
    # WordPress parses the body only for a JSON content type; anything else
    # leaves the plugin without parameters, and it rejects the query.
    if is_json_content_type(request.headers.get("Content-Type", "")) and body.strip():
        try:
            decoded = decode_json(body)
        except ValueError:
            return await send_json(request, 400, INVALID_JSON, context)
        if isinstance(decoded, dict):
            params = decoded
    if traits.nonce_required and not nonces.plugin_allows:
        return await send_json(request, 401, NOT_ALLOWED, context)
    if traits.new_token and nonces.header == "previous":
        context.new_token = site.current_nonce

    streaming = php_truthy(params.get("stream"))
    bot_id, custom_id = params.get("botId"), params.get("customId")
    message = php_string(params.get("newMessage"))
    file_ids = _file_ids(traits, params)
    if (
        not (php_truthy(bot_id) or php_truthy(custom_id))
        or not (message.strip(_BLANKS) or (file_ids and traits.file_without_message))
        or len(message.encode("utf-8")) > SERVER_MESSAGE_LIMIT
    ):
        return await send_error_json(request, 403, REJECTED, context)

    if traits.upload_owner:
        site.session_owner(request, context)  # the plugin makes sure a guest has a session

    known_bot = php_truthy(custom_id) or php_string(bot_id) in site.bot_ids
    if (not known_bot and traits.unknown_bot == "refuse") or _too_long(traits, message, site):
        # Refused before the plugin switched to streaming: a stream request
        # still gets its error event, but as a 200 application/json body.
        if streaming:
            return await send(request, 200, event_line(error_event(REJECTED)), JSON_TYPE, context)
        return await send_error_json(request, 500, REJECTED, context)

    files = [site.uploads.get(file_id) for file_id in file_ids]
    if None in files and traits.unknown_file == "fatal":
        return await send_fatal(request, context)
    used = [file for file in files if file is not None]
    for file in used:
        _note_use(traits, file, params)
    completion = model.complete(
        message, _attachments(site, traits, used), delta_delay=site.delta_delay
    )
    response_id = site.next_response_id() if traits.rich_payload and not completion.failure else ""
    if streaming:
        plan = apply_event_faults(_plan(site, params, message, completion, response_id, context), site.faults)
        return await stream(
            request,
            plan,
            context,
            delay=site.faults.delay,
            drop_after=site.faults.drop_after,
            malformed_after=site.faults.malformed_after,
            counters=site,
        )
    return await _one_shot(site, request, params, message, completion, response_id, context)


def _file_ids(traits: Generation, params: dict[str, Any]) -> list[Any]:
    """The file ids a submit names, read from the generation's field(s)."""
    if traits.file_list_field is not None:
        many = params.get(traits.file_list_field)
        if isinstance(many, list) and many:
            return many
    one = params.get(traits.file_field)
    return [one] if php_truthy(one) else []


def _too_long(traits: Generation, message: str, site: SiteState) -> bool:
    """Whether the server finds ``message`` over the bot's ``textInputMaxLength``."""
    if traits.message_limit == "bytes":
        return len(message.encode("utf-8")) > site.text_input_max_length
    if traits.message_limit == "characters":
        return len(message) > site.text_input_max_length
    return False


def _note_use(traits: Generation, file: StoredFile, params: dict[str, Any]) -> None:
    """The bookkeeping a submit does on the files it uses (seen in ``files/list``)."""
    if traits.purpose_after_use is None:
        return
    file.purpose = traits.purpose_after_use
    file.env_id = ENV_ID
    file.metadata.update({"query_envId": ENV_ID, "query_session": php_string(params.get("session"))})


def _attachments(site: SiteState, traits: Generation, files: list[StoredFile]) -> list[model.Attachment]:
    """The files as the plugin hands them to the model."""
    if traits.attachment_mime == "images":
        files = [file for file in files if file.kind == "image"]
    by_url = site.image_remote_upload == "url"
    return [
        model.Attachment(
            mime="image/jpeg" if traits.attachment_mime == "jpeg" else file.mime,
            size=file.size,
            url=file.url if by_url else None,
        )
        for file in files
    ]


def _upstream_error(traits: Generation, failure: model.UpstreamFailure, *, streaming: bool) -> str:
    """The text the plugin gives a failed upstream call."""
    template = traits.stream_error if streaming else traits.one_shot_error
    return template.format(
        prefix=traits.upstream_prefix,
        message=failure.message,
        code=failure.code,
        type=failure.type,
        upstream=failure.body(),
    )


def _plan(
    site: SiteState,
    params: dict[str, Any],
    message: str,
    completion: model.Completion,
    response_id: str,
    context: Context,
) -> list[Event]:
    """The events the plugin streams for ``completion``."""
    traits = site.traits
    if completion.failure is not None:
        return [Event(error_event(_upstream_error(traits, completion.failure, streaming=True)))]
    events: list[Event] = []
    if site.event_logs:
        # With event logs on, 3.x reports the upstream stream's start first.
        status = {
            "type": "live",
            "data": "Starting stream...",
            "timestamp": round(time.time(), 6),
            "subtype": "status",
            "visibility": "collapsed",
            "metadata": {"model": model.STAND_IN_MODEL, "id": response_id},
        }
        events.append(Event(status))
    events += [Event({"type": "live", "data": delta}, completion.pause) for delta in completion.deltas]
    if completion.cut:
        return events + [Event(error_event(traits.upstream_prefix + model.MIDSTREAM_ERROR))]
    payload = _payload(traits, params, message, completion, response_id, context.new_token)
    return events + [Event({"type": "end", "data": php_json(payload)})]


async def _one_shot(
    site: SiteState,
    request: web.Request,
    params: dict[str, Any],
    message: str,
    completion: model.Completion,
    response_id: str,
    context: Context,
) -> web.StreamResponse:
    traits = site.traits
    # The whole answer is produced before anything is sent.
    if not await pause(request, site.faults.delay + completion.pause * len(completion.deltas)):
        site.disconnects += 1
        return web.Response()
    if site.faults.drop_after == 0:
        reset(request)
        return web.Response()
    if completion.failure is not None:
        error = _upstream_error(traits, completion.failure, streaming=False)
        return await send_error_json(request, 500, error, context)
    if completion.cut:
        return await send_error_json(request, 500, traits.upstream_prefix + model.MIDSTREAM_ERROR, context)
    payload = _payload(traits, params, message, completion, response_id, context.new_token)
    return await send_json(request, 200, payload, context)


def _payload(
    traits: Generation,
    params: dict[str, Any],
    message: str,
    completion: model.Completion,
    response_id: str,
    new_token: str | None,
) -> dict[str, Any]:
    """The final answer object: the ``end`` event's data, or the one-shot JSON.

    ``new_token``, when given, is the last key (3.x nonce rotation).
    """
    history = params.get("messages")
    prompt_tokens = model.word_count(INSTRUCTIONS) + model.word_count(message)
    if isinstance(history, list):
        prompt_tokens += sum(model.word_count(m.get("content")) for m in history if isinstance(m, dict))
    completion_tokens = len(completion.deltas)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if not traits.rich_payload:
        return {"success": True, "reply": completion.reply, "images": None, "usage": usage}
    usage.update({"price": None, "queries": 1, "accuracy": "estimated"})
    payload: dict[str, Any] = {
        "success": True,
        "reply": completion.reply,
        "images": None,
        "actions": [],
        "shortcuts": [],
        "blocks": [],
        "usage": usage,
        "responseId": response_id,
    }
    if new_token is not None:
        payload["new_token"] = new_token
    return payload
