"""The :class:`Emulator`: one emulated site's state and knobs, and the routes that serve it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable

from aiohttp import web
from multidict import CIMultiDict

from .faults import Faults, status_answer
from .files import handle_delete, handle_list, handle_upload, serve_upload
from .forms import read_form
from .generations import traits_of
from .nonces import NonceCheck, NoncePair
from .pages import ChatbotPage, render_page
from .requestlog import RECORDED_BODY_LIMIT, RecordedRequest, RequestLog, headers_of
from .submit import handle_submit
from .uploads import UploadStore
from .wire import Context, send, send_json
from .wordpress import HTML_TYPE, INVALID_NONCE, NO_ROUTE, NOCACHE_HEADERS, NOT_FOUND_PAGE

__all__ = ["Emulator"]

SUBMIT_ROUTE = "/mwai-ui/v1/chats/submit"
"""The chat route, below the REST root."""
START_SESSION_ROUTE = "/mwai/v1/start_session"
"""The route that hands a guest its nonce, session generation only."""
UPLOAD_ROUTE = "/mwai-ui/v1/files/upload"
DELETE_ROUTE = "/mwai-ui/v1/files/delete"
LIST_ROUTE = "/mwai-ui/v1/files/list"
_MIB = 1024 * 1024


class Emulator:
    """The AI Engine plugin of one generation, as an aiohttp application.

    State lives here and is shared by every application :meth:`make_app` returns:

    - ``generation``, and ``traits``: what that generation does (a
      :class:`~opchatgpts.emulator.generations.Generation`);
    - ``faults``: the :class:`Faults` applied to chats/submit; assign a new one
      at any time;
    - ``requests``: the last ``request_log_size`` requests received, on any route,
      oldest first (a :class:`RequestLog`: ``len``, iteration, indexing);
    - ``uploads``: the uploaded files (an :class:`UploadStore`);
    - ``disconnects``: event streams whose client went away before they finished;
    - ``completed_streams``: event streams whose body was finished cleanly;
    - ``current_nonce`` and ``previous_nonce``: the two nonces WordPress accepts
      (10 lowercase hex digits each; see :meth:`rotate_nonce`).
    """

    def __init__(
        self,
        generation: str = "open",
        *,
        rest_prefix: str = "/wp-json",
        page_path: str = "/chatgpt-free-use/",
        bot_ids: Iterable[str] = ("default",),
        context_id: int = 4,
        delta_delay: float = 0.0,
        text_input_max_length: int = 512,
        event_logs: bool | None = None,
        image_upload: bool = False,
        image_remote_upload: str = "data",
        upload_max_filesize: int = 2 * _MIB,
        post_max_size: int = 8 * _MIB,
        upload_store_files: int = 256,
        upload_store_bytes: int = 64 * _MIB,
        request_log_size: int = 1000,
    ) -> None:
        """Configure the emulated site.

        - ``rest_prefix``: the REST root below the site root (``/blog/wp-json`` for a
          sub-directory install); ``page_path``: the chatbot page.
        - ``bot_ids``: the chatbots that exist (the page shows the first);
          ``context_id``: the page's post id.
        - ``delta_delay``: the time the model takes for each delta.
        - ``text_input_max_length``: the bot's input limit, shown on the page and
          enforced by 2.x and 3.x.
        - ``event_logs``: stream a ``status`` event before the first delta, as 3.x with
          event logs on does (the default on the session generation; the others
          cannot).
        - ``image_upload``: the page offers uploads (the server never checks it).
        - ``image_remote_upload``: ``"data"`` (files reach the model as ``data:`` URLs)
          or ``"url"`` (by their public URL), the plugin's site option.
        - ``upload_max_filesize``, ``post_max_size``: PHP's limits, in bytes: a file
          over the first is refused, a body over the second arrives empty.
        - ``upload_store_files``, ``upload_store_bytes``: how many uploads, and how many
          bytes of them, are kept; older ones go as if they had expired.
        - ``request_log_size``: how many requests ``requests`` keeps.
        """
        self.traits = traits_of(generation)
        self.generation = generation
        if not rest_prefix.strip("/"):
            raise ValueError("rest_prefix must name a path below the site root")
        self.rest_prefix = "/" + rest_prefix.strip("/")
        self.page_path = page_path if page_path.startswith("/") else "/" + page_path
        self.bot_ids: tuple[str, ...] = tuple(bot_ids)
        if not self.bot_ids:
            raise ValueError("bot_ids must name at least one chatbot")
        self.context_id = context_id
        self.delta_delay = delta_delay
        self.text_input_max_length = text_input_max_length
        if event_logs is None:
            event_logs = self.traits.event_logs
        if event_logs and not self.traits.event_logs:
            raise ValueError(f"the {generation} generation has no event logs (AI Engine 2.8.3+ has)")
        self.event_logs = event_logs
        self.image_upload = image_upload
        if image_remote_upload not in ("data", "url"):
            raise ValueError(f"image_remote_upload must be 'data' or 'url', not {image_remote_upload!r}")
        self.image_remote_upload = image_remote_upload
        self.upload_max_filesize = upload_max_filesize
        self.post_max_size = post_max_size
        self.faults = Faults()
        self.requests = RequestLog(request_log_size)
        self.uploads = UploadStore(upload_store_files, upload_store_bytes)
        self.disconnects = 0
        self.completed_streams = 0
        self._nonces = NoncePair()
        self._submits = 0
        self._responses = 0
        self._last_session_id = ""

    # ---- nonces, sessions and counters ----------------------------------------------

    @property
    def current_nonce(self) -> str:
        """The nonce of the current tick."""
        return self._nonces.current

    @property
    def previous_nonce(self) -> str:
        """The nonce of the previous tick, still accepted."""
        return self._nonces.previous

    def rotate_nonce(self) -> None:
        """Start a new nonce tick: the current nonce becomes the previous one."""
        self._nonces.rotate()

    def expire_nonces(self) -> None:
        """Invalidate both the current and the previous nonce."""
        self._nonces.expire()

    def expire_uploads(self, *file_ids: str) -> int:
        """Drop the named uploads (all of them if none is named), as the plugin's expiry
        cleanup does; returns how many went. Their ids and URLs then name nothing."""
        return self.uploads.expire(file_ids or None)

    def submit_count(self) -> int:
        """Number of chats/submit requests received."""
        return self._submits

    def next_response_id(self) -> str:
        """A fresh ``responseId`` for a 3.x answer."""
        self._responses += 1
        return f"chatcmpl-emu{self._responses:06d}"

    def _new_session_id(self) -> str:
        """A 13-hex-digit id in the style of PHP's uniqid()."""
        now = time.time()
        session_id = f"{int(now):08x}{int(now % 1 * 1_000_000):05x}"
        if session_id <= self._last_session_id:
            session_id = f"{int(self._last_session_id, 16) + 1:013x}"
        self._last_session_id = session_id
        return session_id

    def session_owner(self, request: web.Request, context: Context) -> str:
        """The guest's ``mwai_session_id``; a new one is set as a cookie if it has none."""
        session_id = request.cookies.get("mwai_session_id") or ""
        if not session_id:
            session_id = self._new_session_id()
            context.headers.add("Set-Cookie", f"mwai_session_id={session_id}; path=/; HttpOnly")
        return session_id

    def site_root(self, request: web.Request) -> str:
        """``scheme://host`` as the request addressed the site."""
        return f"{request.scheme}://{request.host}"

    # ---- the application --------------------------------------------------------------

    def make_app(self) -> web.Application:
        """An aiohttp application serving the page, the REST routes, uploads and 404s."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        kept, size = await _read_body(request, max(self.post_max_size, RECORDED_BODY_LIMIT))
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers=headers_of(request.headers.items()),
                body=kept[:RECORDED_BODY_LIMIT],
                body_size=size,
            )
        )
        # PHP reads no body at all that is over post_max_size.
        body = kept if size <= self.post_max_size else b""
        route = self._rest_route(request)
        if route is not None:
            return await self._rest(request, route, body)
        if request.method in ("GET", "HEAD"):
            if request.path == self.page_path:
                return await self._page(request)
            upload = self.uploads.at_path(request.path)
            if upload is not None:
                return serve_upload(upload, request.method)
        context = Context(CIMultiDict(NOCACHE_HEADERS))
        context.headers["Link"] = self._link_header(request)
        return await send(request, 404, NOT_FOUND_PAGE.encode("utf-8"), HTML_TYPE, context)

    def _rest_route(self, request: web.Request) -> str | None:
        """The REST route a request addresses, from the REST root or ``?rest_route=``."""
        if request.path == "/" and "rest_route" in request.query:
            route = request.query["rest_route"]
        elif request.path == self.rest_prefix or request.path.startswith(self.rest_prefix + "/"):
            route = request.path[len(self.rest_prefix) :]
        else:
            return None
        return "/" + route.strip("/")

    def _link_header(self, request: web.Request) -> str:
        return f'<{self.site_root(request)}{self.rest_prefix}/>; rel="https://api.w.org/"'

    async def _rest(self, request: web.Request, route: str, body: bytes) -> web.StreamResponse:
        if route == SUBMIT_ROUTE:
            self._submits += 1
            proxied = status_answer(self.faults)
            if proxied is not None:
                return proxied
        context = Context()
        context.headers["Link"] = self._link_header(request)
        form = read_form(
            body, request.headers.get("Content-Type", ""), upload_max_filesize=self.upload_max_filesize
        )

        # WordPress core checks a nonce for every REST request that carries one
        # (a _wpnonce field, else the header), on every plugin version; a good one
        # is answered with a fresh X-WP-Nonce header.
        header_nonce = request.headers.get("X-WP-Nonce")
        core_nonce = form.fields.get("_wpnonce", request.query.get("_wpnonce", header_nonce))
        nonces = NonceCheck(core=self._nonces.state(core_nonce), header=self._nonces.state(header_nonce))
        if nonces.core == "invalid":
            context.headers.update(NOCACHE_HEADERS)
            return await send_json(request, 403, INVALID_NONCE, context)
        if nonces.core != "none":
            context.headers["X-WP-Nonce"] = self.current_nonce

        if request.method == "POST":
            if route == SUBMIT_ROUTE:
                return await handle_submit(self, request, body, nonces, context)
            if route == START_SESSION_ROUTE and self.traits.start_session:
                return await self._start_session(request, context)
            if route == UPLOAD_ROUTE:
                return await handle_upload(self, request, form, nonces, context)
            if route == DELETE_ROUTE:
                return await handle_delete(self, request, body, nonces, context)
            if route == LIST_ROUTE:
                return await handle_list(self, request, body, nonces, context)
        return await send_json(request, 404, NO_ROUTE, context)

    async def _start_session(self, request: web.Request, context: Context) -> web.StreamResponse:
        headers: CIMultiDict[str] = CIMultiDict()
        if "PHPSESSID" not in request.cookies:
            alphabet = "0123456789abcdefghijklmnopqrstuv"
            php_session = "".join(secrets.choice(alphabet) for _ in range(26))
            headers.add("Set-Cookie", f"PHPSESSID={php_session}; path=/")
        headers["Expires"] = "Thu, 19 Nov 1981 08:52:00 GMT"
        headers["Cache-Control"] = "no-store, no-cache, must-revalidate"
        headers["Pragma"] = "no-cache"
        headers.extend(context.headers)
        context.headers = headers
        # The plugin keeps a session id it already gave this browser.
        session_id = self.session_owner(request, context)
        context.headers["Allow"] = "POST"
        answer = {"success": True, "sessionId": session_id, "restNonce": self.current_nonce}
        return await send_json(request, 200, answer, context)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        root = self.site_root(request)
        page = ChatbotPage(
            generation=self.generation,
            site_root=root,
            rest_url=root + self.rest_prefix,
            bot_id=self.bot_ids[0],
            context_id=self.context_id,
            nonce=self.current_nonce,
            text_input_max_length=self.text_input_max_length,
            image_upload=self.image_upload,
            event_logs=self.event_logs,
        )
        context = Context(CIMultiDict(Link=self._link_header(request)))
        return await send(request, 200, render_page(page).encode("utf-8"), HTML_TYPE, context)


async def _read_body(request: web.Request, keep: int) -> tuple[bytes, int]:
    """The body's first ``keep`` bytes and its whole length; the rest is read and dropped."""
    chunks: list[bytes] = []
    kept = size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if kept < keep:
            chunks.append(chunk[: keep - kept])
            kept += len(chunks[-1])
    return b"".join(chunks), size
