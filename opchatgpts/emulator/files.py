"""The ``files/*`` routes, and the uploaded files at their public URLs.

- ``files/upload`` (multipart ``file``, plus ``purpose`` on 2.0+): 1.9.x lets anyone
  in (its permission check is broken); 2.0+ want the ``X-WP-Nonce`` header. The
  checks come in the plugin's order: no file part, no purpose, the type, then the
  size (over ``upload_max_filesize``: 500, JSON on 1.9.x, a PHP fatal error after).
- ``files/delete`` and ``files/list`` differ wildly per generation; see
  :class:`~.generations.Generation`.
- A stored file is public: ``GET`` its URL, no authentication, as nginx serves it.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

from aiohttp import web

from .forms import Form
from .nonces import NonceCheck
from .php import decode_json, is_json_content_type, mysql_number, php_truthy
from .state import SiteState
from .uploads import IMAGE_EXPIRES, StoredFile, check_file_type, new_upload
from .wire import Context, send_error_json, send_fatal, send_json
from .wordpress import INVALID_HANDLER, INVALID_JSON, NO_ROUTE, NOT_ALLOWED

__all__ = ["handle_delete", "handle_list", "handle_upload", "serve_upload"]

_SERVER_ROOT = "/var/www/html"  # where files/list says the uploads are


async def handle_upload(
    site: SiteState, request: web.Request, form: Form, nonces: NonceCheck, context: Context
) -> web.StreamResponse:
    """Answer one ``POST files/upload``."""
    traits = site.traits
    if traits.nonce_required and not nonces.plugin_allows:
        return await send_json(request, 401, NOT_ALLOWED, context)
    upload = form.files.get("file")
    if upload is None:
        return await send_error_json(request, 400, "No file provided.", context)
    purpose = form.fields.get("purpose")
    if traits.purpose_required and not php_truthy(purpose):
        return await send_error_json(request, 400, "Purpose is required.", context)
    content = None if upload.too_big else upload.data
    checked = check_file_type(upload.filename, content, traits.extra_extensions)
    if checked is None:
        return await send_error_json(request, 400, "Invalid file type.", context)
    if upload.too_big:
        if traits.oversize_upload == "could_not_move":
            return await send_error_json(request, 500, "Could not move the file.", context)
        return await send_fatal(request, context)  # copy('') in PHP 8: ValueError
    extension, mime = checked
    file = new_upload(
        traits,
        site.uploads,
        site_root=site.site_root(request),
        filename=upload.filename,
        extension=extension,
        mime=mime,
        data=upload.data,
    )
    if traits.purpose_required:
        file.purpose = purpose
    if traits.upload_owner:
        file.owner = "session_" + site.session_owner(request, context)
    site.uploads.add(file)
    answer = {"success": True, "data": {"id": file.ref_id, "url": file.url}}
    return await send_json(request, 200, answer, context)


async def handle_delete(
    site: SiteState, request: web.Request, body: bytes, nonces: NonceCheck, context: Context
) -> web.StreamResponse:
    """Answer one ``POST files/delete`` (``{"files": [...]}``)."""
    traits = site.traits
    if traits.files_delete == "invalid_handler":
        return await send_json(request, 500, INVALID_HANDLER, context)
    params = _json_params(request, body)
    if params is None:
        return await send_json(request, 400, INVALID_JSON, context)
    if not nonces.plugin_allows:
        return await send_json(request, 401, NOT_ALLOWED, context)
    named = params.get("files")
    named = named if isinstance(named, list) else []
    if traits.files_delete == "numeric":
        # WHERE id IN (...): MySQL reads each entry as a number, so a refId matches
        # nothing (or the row its leading digits spell); no owner check.
        for entry in named:
            number = mysql_number(entry)
            site.uploads.remove(site.uploads.numbered(number) if number is not None else None)
        return await send_json(request, 200, {"success": True}, context)
    owner = "session_" + site.session_owner(request, context)
    valid = [file for file in map(site.uploads.get, named) if file is not None]
    if not valid:
        return await send_error_json(request, 400, "No valid files to delete", context)
    owned = [file for file in valid if file.owner == owner]
    if not owned:
        return await send_error_json(request, 403, "No authorized files to delete", context)
    for file in owned:
        site.uploads.remove(file)
    return await send_json(request, 200, {"success": True, "deleted": len(owned)}, context)


async def handle_list(
    site: SiteState, request: web.Request, body: bytes, nonces: NonceCheck, context: Context
) -> web.StreamResponse:
    """Answer one ``POST files/list`` (``{"limit": N, "page": P}``)."""
    traits = site.traits
    if traits.files_list == "no_route":
        return await send_json(request, 404, NO_ROUTE, context)
    params = _json_params(request, body)
    if params is None:
        return await send_json(request, 400, INVALID_JSON, context)
    if not nonces.plugin_allows:
        return await send_json(request, 401, NOT_ALLOWED, context)
    if traits.files_list == "fatal":
        # "You are not allowed to access files from another user.", uncaught.
        return await send_fatal(request, context)
    limit = _php_int(params.get("limit")) or 10
    page = _php_int(params.get("page"))
    offset = (page - 1) * limit if page else 0
    # ORDER BY updated DESC; rows of the same second come in id order.
    files = sorted(site.uploads, key=lambda f: (-int(f.created), f.number))
    rows = [_row(file) for file in files[offset : offset + limit]]
    answer = {"success": True, "data": {"files": rows, "total": str(len(files))}}
    return await send_json(request, 200, answer, context)


def serve_upload(file: StoredFile, method: str) -> web.Response:
    """The stored file at its public URL, as nginx serves a static file."""
    headers = {
        "Content-Type": file.mime,
        "Last-Modified": formatdate(file.created, usegmt=True),
        "ETag": f'"{int(file.created):x}-{file.size:x}"',
        "Accept-Ranges": "bytes",
    }
    if method == "HEAD":
        headers["Content-Length"] = str(file.size)
        return web.Response(headers=headers)
    return web.Response(body=file.data, headers=headers)


def _json_params(request: web.Request, body: bytes) -> dict[str, Any] | None:
    """The JSON body's parameters ({} for no JSON body); None when it is not JSON."""
    if not (is_json_content_type(request.headers.get("Content-Type", "")) and body.strip()):
        return {}
    try:
        decoded = decode_json(body)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else {}


def _php_int(value: Any) -> int:
    """PHP's ``intval`` for the values a JSON body holds."""
    number = mysql_number(value)
    return int(number) if number is not None else 0


def _mysql_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _row(file: StoredFile) -> dict[str, Any]:
    """A file as ``files/list`` shows it: its ``mwai_files`` row and metadata."""
    return {
        "id": str(file.number),
        "refId": file.ref_id,
        "envId": file.env_id,
        "userId": file.owner,
        "type": file.kind,
        "status": "uploaded",
        "purpose": file.purpose,
        "created": _mysql_time(file.created),
        "updated": _mysql_time(file.created),
        "expires": _mysql_time(file.created + IMAGE_EXPIRES),
        "path": _SERVER_ROOT + file.path,
        "url": file.url,
        "metadata": dict(file.metadata) or [],  # PHP's empty array is a JSON list
    }
