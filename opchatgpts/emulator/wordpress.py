"""WordPress core's own answers, byte for byte as recorded.

The REST API's error bodies, the "critical error" answer a PHP fatal error gives
(JSON for a JSON request, an HTML page otherwise), and the headers that go with them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .php import is_json_content_type

__all__ = [
    "CRITICAL_ERROR",
    "CRITICAL_ERROR_PAGE",
    "EVENT_STREAM_TYPE",
    "HTML_TYPE",
    "INVALID_HANDLER",
    "INVALID_JSON",
    "INVALID_NONCE",
    "JSON_TYPE",
    "NOCACHE_HEADERS",
    "NOT_ALLOWED",
    "NOT_FOUND_PAGE",
    "NO_ROUTE",
    "is_json_request",
]

JSON_TYPE = "application/json; charset=UTF-8"
"""The Content-Type of every REST answer, errors and refusals included."""
EVENT_STREAM_TYPE = "text/event-stream;charset=UTF-8"
"""The Content-Type the plugin sets once it streams."""
HTML_TYPE = "text/html; charset=UTF-8"

NOCACHE_HEADERS = {
    "Expires": "Wed, 11 Jan 1984 05:00:00 GMT",
    "Cache-Control": "no-cache, must-revalidate, max-age=0",
}
"""What ``nocache_headers()`` adds to a refused nonce, a fatal error or a 404 page."""

INVALID_NONCE: dict[str, Any] = {
    "code": "rest_cookie_invalid_nonce",
    "message": "Cookie check failed",
    "data": {"status": 403},
}
"""403: a bad or expired nonce, on any route and any plugin version."""
NOT_ALLOWED: dict[str, Any] = {
    "code": "rest_forbidden",
    "message": "Sorry, you are not allowed to do that.",
    "data": {"status": 401},
}
"""401: a route's permission check said no (the plugin wants an ``X-WP-Nonce`` header)."""
INVALID_JSON: dict[str, Any] = {
    "code": "rest_invalid_json",
    "message": "Invalid JSON body passed.",
    "data": {"status": 400, "json_error_code": 4, "json_error_message": "Syntax error"},
}
"""400: a JSON Content-Type with a body that is not JSON."""
NO_ROUTE: dict[str, Any] = {
    "code": "rest_no_route",
    "message": "No route was found matching the URL and request method.",
    "data": {"status": 404},
}
"""404: no such route, or not for this method."""
INVALID_HANDLER: dict[str, Any] = {
    "code": "rest_invalid_handler",
    "message": "The handler for the route is invalid.",
    "data": {"status": 500},
}
"""500: the route exists but its callback does not (1.9.x ``files/delete``)."""

_CRITICAL_ERROR_MESSAGE = (
    "<p>There has been a critical error on this website.</p>"
    '<p><a href="https://wordpress.org/support/article/faq-troubleshooting/">'
    "Learn more about troubleshooting WordPress.</a></p>"
)
CRITICAL_ERROR: dict[str, Any] = {
    "code": "internal_server_error",
    "message": _CRITICAL_ERROR_MESSAGE,
    "data": {"status": 500},
    "additional_errors": [],
}
"""500: a PHP fatal error while answering a JSON request."""

# fmt: off
CRITICAL_ERROR_PAGE = (
    '<!DOCTYPE html>\n'
    '<html lang="en-US">\n'
    '<head>\n'
    '\t<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n'
    '\t<meta name="viewport" content="width=device-width">\n'
    "\t\t<meta name='robots' content='max-image-preview:large, noindex, follow' />\n"
    '\t<title>WordPress &rsaquo; Error</title>\n'
    '\t<style type="text/css">\n'
    '\t\thtml {\n'
    '\t\t\tbackground: #f1f1f1;\n'
    '\t\t}\n'
    '\t\tbody {\n'
    '\t\t\tbackground: #fff;\n'
    '\t\t\tborder: 1px solid #ccd0d4;\n'
    '\t\t\tcolor: #444;\n'
    '\t\t\tfont-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Oxygen-Sans, Ubuntu, '
    'Cantarell, "Helvetica Neue", sans-serif;\n'
    '\t\t\tmargin: 2em auto;\n'
    '\t\t\tpadding: 1em 2em;\n'
    '\t\t\tmax-width: 700px;\n'
    '\t\t\t-webkit-box-shadow: 0 1px 1px rgba(0, 0, 0, .04);\n'
    '\t\t\tbox-shadow: 0 1px 1px rgba(0, 0, 0, .04);\n'
    '\t\t}\n'
    '\t\th1 {\n'
    '\t\t\tborder-bottom: 1px solid #dadada;\n'
    '\t\t\tclear: both;\n'
    '\t\t\tcolor: #666;\n'
    '\t\t\tfont-size: 24px;\n'
    '\t\t\tmargin: 30px 0 0 0;\n'
    '\t\t\tpadding: 0;\n'
    '\t\t\tpadding-bottom: 7px;\n'
    '\t\t}\n'
    '\t\t#error-page {\n'
    '\t\t\tmargin-top: 50px;\n'
    '\t\t}\n'
    '\t\t#error-page p,\n'
    '\t\t#error-page .wp-die-message {\n'
    '\t\t\tfont-size: 14px;\n'
    '\t\t\tline-height: 1.5;\n'
    '\t\t\tmargin: 25px 0 20px;\n'
    '\t\t}\n'
    '\t\t#error-page code {\n'
    '\t\t\tfont-family: Consolas, Monaco, monospace;\n'
    '\t\t}\n'
    '\t\tul li {\n'
    '\t\t\tmargin-bottom: 10px;\n'
    '\t\t\tfont-size: 14px ;\n'
    '\t\t}\n'
    '\t\ta {\n'
    '\t\t\tcolor: #0073aa;\n'
    '\t\t}\n'
    '\t\ta:hover,\n'
    '\t\ta:active {\n'
    '\t\t\tcolor: #006799;\n'
    '\t\t}\n'
    '\t\ta:focus {\n'
    '\t\t\tcolor: #124964;\n'
    '\t\t\t-webkit-box-shadow:\n'
    '\t\t\t\t0 0 0 1px #5b9dd9,\n'
    '\t\t\t\t0 0 2px 1px rgba(30, 140, 190, 0.8);\n'
    '\t\t\tbox-shadow:\n'
    '\t\t\t\t0 0 0 1px #5b9dd9,\n'
    '\t\t\t\t0 0 2px 1px rgba(30, 140, 190, 0.8);\n'
    '\t\t\toutline: none;\n'
    '\t\t}\n'
    '\t\t.button {\n'
    '\t\t\tbackground: #f3f5f6;\n'
    '\t\t\tborder: 1px solid #016087;\n'
    '\t\t\tcolor: #016087;\n'
    '\t\t\tdisplay: inline-block;\n'
    '\t\t\ttext-decoration: none;\n'
    '\t\t\tfont-size: 13px;\n'
    '\t\t\tline-height: 2;\n'
    '\t\t\theight: 28px;\n'
    '\t\t\tmargin: 0;\n'
    '\t\t\tpadding: 0 10px 1px;\n'
    '\t\t\tcursor: pointer;\n'
    '\t\t\t-webkit-border-radius: 3px;\n'
    '\t\t\t-webkit-appearance: none;\n'
    '\t\t\tborder-radius: 3px;\n'
    '\t\t\twhite-space: nowrap;\n'
    '\t\t\t-webkit-box-sizing: border-box;\n'
    '\t\t\t-moz-box-sizing:    border-box;\n'
    '\t\t\tbox-sizing:         border-box;\n'
    '\n'
    '\t\t\tvertical-align: top;\n'
    '\t\t}\n'
    '\n'
    '\t\t.button.button-large {\n'
    '\t\t\tline-height: 2.30769231;\n'
    '\t\t\tmin-height: 32px;\n'
    '\t\t\tpadding: 0 12px;\n'
    '\t\t}\n'
    '\n'
    '\t\t.button:hover,\n'
    '\t\t.button:focus {\n'
    '\t\t\tbackground: #f1f1f1;\n'
    '\t\t}\n'
    '\n'
    '\t\t.button:focus {\n'
    '\t\t\tbackground: #f3f5f6;\n'
    '\t\t\tborder-color: #007cba;\n'
    '\t\t\t-webkit-box-shadow: 0 0 0 1px #007cba;\n'
    '\t\t\tbox-shadow: 0 0 0 1px #007cba;\n'
    '\t\t\tcolor: #016087;\n'
    '\t\t\toutline: 2px solid transparent;\n'
    '\t\t\toutline-offset: 0;\n'
    '\t\t}\n'
    '\n'
    '\t\t.button:active {\n'
    '\t\t\tbackground: #f3f5f6;\n'
    '\t\t\tborder-color: #7e8993;\n'
    '\t\t\t-webkit-box-shadow: none;\n'
    '\t\t\tbox-shadow: none;\n'
    '\t\t}\n'
    '\n'
    '\t\t\t</style>\n'
    '</head>\n'
    '<body id="error-page">\n'
    f'\t<div class="wp-die-message">{_CRITICAL_ERROR_MESSAGE}</div></body>\n'
    '</html>\n'
    '\t'
)
# fmt: on
"""500: a PHP fatal error while answering any other request (``wp_die``'s HTML page)."""

NOT_FOUND_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Page not found</title></head>"
    "<body><h1>Not found</h1></body></html>\n"
)
"""A short stand-in for the theme's 404 page."""


def is_json_request(request: web.Request) -> bool:
    """WordPress's ``wp_is_json_request()``: it picks the format of a fatal error's answer."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or is_json_content_type(request.headers.get("Content-Type", ""))
