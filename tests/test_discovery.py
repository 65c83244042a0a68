"""Reading a chatbot page (no I/O): what a client learns from a page, and what it refuses."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any, Dict

import pytest
from capturefile import parse as parse_capture

from opchatgpts import DiscoveryError, Site
from opchatgpts._protocol.discovery import ChatbotConfig, find_chatbots, looks_like_html, site_from_chatbot

CAPTURES = Path(__file__).parent / "captures"


def page(*systems: Dict[str, Any], params: Any = None, quote: str = "'") -> str:
    """A page with one chatbot container per ``data-system``, escaped as the plugin does."""
    divs = []
    for system in systems:
        attributes = f"data-system={quote}{html.escape(json.dumps(system))}{quote}"
        if params is not None:
            attributes = f"data-params={quote}{html.escape(json.dumps(params))}{quote} " + attributes
        divs.append(f"<div class='mwai-chatbot-container' {attributes} data-theme='{{}}'></div>")
    return "<html><body><p>Chat with us</p>" + "".join(divs) + "</body></html>"


def one(system: Dict[str, Any]) -> ChatbotConfig:
    (bot,) = find_chatbots(page(system))
    return bot


@pytest.mark.parametrize(
    "version, nonce, session",
    [("1.9.99", None, None), ("2.4.3", "1c53331666", None), ("3.6.2", None, None)],
)
def test_captured_pages(version, nonce, session):
    capture = parse_capture(CAPTURES / version / "page.txt")
    (bot,) = find_chatbots(capture.response_body.decode("utf-8"))
    assert (bot.bot_id, bot.custom_id, bot.context_id) == ("default", None, 4)
    assert bot.rest_url is not None and bot.rest_url.endswith("/wp-json")
    assert (bot.rest_nonce, bot.session_id, bot.stream) == (nonce, session, True)


@pytest.mark.parametrize(
    "value, expected",
    [("a1b2c3d4e5f6", "a1b2c3d4e5f6"), ("N/A", None), (None, None), ("", None), (12345, "12345")],
)
def test_session_id(value, expected):
    # "N/A" is what 1.9 prints for "no session": the client must not send it as one.
    assert one({"botId": "default", "sessionId": value}).session_id == expected


@pytest.mark.parametrize(
    "value, expected",
    [(28, 28), ("28", 28), ("0", 0), ("post-28", None), ("-3", None), ("2.5", None), (2.5, None),
     (None, None), (True, None), ([28], None), ("", None)],
)
def test_context_id(value, expected):
    assert one({"botId": "default", "contextId": value}).context_id == expected


def test_every_setting_of_a_logged_in_page():
    system = {
        "botId": "support", "customId": "c-7", "sessionId": "sess-42", "restNonce": "n0nce",
        "contextId": 12, "restUrl": "https://e.com/blog/wp-json", "stream": False, "userData": None,
    }
    (bot,) = find_chatbots(page(system, params={"aiName": "Helper"}))
    assert (bot.bot_id, bot.custom_id) == ("support", "c-7")
    assert (bot.session_id, bot.rest_nonce) == ("sess-42", "n0nce")
    assert (bot.context_id, bot.rest_url, bot.stream) == (12, "https://e.com/blog/wp-json", False)
    assert bot.system == system and bot.params == {"aiName": "Helper"}
    # The nonce is a credential: the repr says whether there is one, never what it is.
    assert "n0nce" not in repr(bot) and "nonce=set" in repr(bot)
    assert "nonce=none" in repr(one({"botId": "default", "restNonce": None}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        bot.rest_nonce = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    "system, expected",
    [({}, (None, None, None, True)), ({"botId": 5, "customId": "", "restUrl": "", "stream": 0},
                                      ("5", None, None, True))],
)
def test_missing_or_odd_settings(system, expected):
    bot = one(system)
    assert (bot.bot_id, bot.custom_id, bot.rest_url, bot.stream) == expected
    assert bot.params == {}


def test_several_chatbots_in_page_order_and_any_quoting():
    first, second = {"botId": "a", "contextId": 1}, {"botId": "b", "contextId": 2}
    text = page(first) + page(second, quote='"').replace("&quot;", "&#34;")
    assert [(b.bot_id, b.context_id) for b in find_chatbots(text)] == [("a", 1), ("b", 2)]


def test_what_is_not_a_chatbot_is_skipped():
    text = (
        "<div class='mwai-chatbot'></div>"  # another class
        "<div class='mwai-chatbot-container' data-params='{}'></div>"  # no data-system
        "<div class='mwai-chatbot-container' data-system='[1, 2]'></div>"  # not an object
        "<div class=\"x mwai-chatbot-container y\" data-system='{&quot;botId&quot;:&quot;ok&quot;}'>"
    )
    assert [b.bot_id for b in find_chatbots(text)] == ["ok"]
    assert find_chatbots("<html><body>no chatbot</body></html>") == []


def test_params_that_are_not_an_object_are_dropped():
    (bot,) = find_chatbots(page({"botId": "default"}, params=["x"]))
    assert bot.params == {}


@pytest.mark.parametrize("attribute", ["system", "params"])
@pytest.mark.parametrize("value", ["{&quot;botId&quot;:", "{not json}", "[" * 5000])
def test_broken_json_is_a_discovery_error_naming_the_attribute(attribute, value):
    text = f"<div class='mwai-chatbot-container' data-{attribute}='{value}'></div>"
    with pytest.raises(DiscoveryError, match=f"the chatbot's data-{attribute} is not valid JSON"):
        find_chatbots(text)


@pytest.mark.parametrize(
    "body, content_type, expected",
    [
        (b"{}", "text/html; charset=UTF-8", True),
        (b"{}", "TEXT/HTML", True),
        (b"{}", "application/xhtml+xml", True),
        (b"\n  <!DOCTYPE html><html></html>", "", True),
        (b"<!doctype HTML>", "application/octet-stream", True),
        (b"<HTML lang='en'>", "", True),
        (b"<meta charset='utf-8'><head><title>x</title>", "text/plain", True),
        (b'{"hello": "world"}', "application/json", False),
        (b"", "", False),
        (b"plain text that mentions <html> later", "text/plain", False),
        # Only the start of a body is looked at.
        (b" " * 1024 + b"<html>", "", False),
        (b"x" * 1020 + b"<head>", "", False),
        (b"x" * 1019 + b"<head>", "", True),
        (b"x" * 1000 + b"<head>", "", True),
    ],
)
def test_html_is_recognised_by_type_or_by_content(body, content_type, expected):
    assert looks_like_html(body, content_type) is expected
    if not content_type:
        assert looks_like_html(body) is expected


# -- the bot's message length limit, and the Site of a chatbot ---------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [(512, 512), ("512", 512), (" 80 ", 80), (1, 1), (0, None), ("0", None), (-5, None), ("-5", None),
     (2.5, None), ("2.5", None), ("", None), ("many", None), (True, None), (None, None), ([512], None)],
)  # fmt: skip
def test_the_message_length_limit(value: Any, expected: Any) -> None:
    (bot,) = find_chatbots(page({"botId": "default"}, params={"textInputMaxLength": value}))
    assert bot.max_message_length == expected
    # Older pages print it in data-system.
    assert one({"botId": "default", "textInputMaxLength": value}).max_message_length == expected


def test_the_params_limit_wins_over_the_systems() -> None:
    (bot,) = find_chatbots(page({"textInputMaxLength": 100}, params={"textInputMaxLength": 50}))
    assert bot.max_message_length == 50
    (bot,) = find_chatbots(page({"textInputMaxLength": 100}, params={"aiName": "x"}))
    assert bot.max_message_length == 100
    (bot,) = find_chatbots(page({"textInputMaxLength": 100}, params=["not", "an", "object"]))
    assert (bot.max_message_length, bot.params) == (100, {})
    assert one({"botId": "default"}).max_message_length is None


def test_the_site_of_a_chatbot() -> None:
    system = {
        "botId": "support", "customId": "c-7", "sessionId": "sess-42", "restNonce": "n0nce",
        "contextId": 12, "restUrl": "/blog/wp-json",
    }  # fmt: skip
    (bot,) = find_chatbots(page(system, params={"textInputMaxLength": 300}))
    site = site_from_chatbot(bot, "https://e.com:8443/blog/chat/?x=1")
    assert site == Site(
        url="https://e.com:8443", rest_url="https://e.com:8443/blog/wp-json", bot_id="support",
        custom_id="c-7", context_id=12, session="sess-42", referer="https://e.com:8443/blog/chat/?x=1",
        nonce="n0nce", max_message_length=300,
    )  # fmt: skip
    assert site.nonce == "n0nce"


@pytest.mark.parametrize(
    "system, bot_id, custom_id",
    [({}, "default", None), ({"customId": "inline"}, None, "inline"),
     ({"botId": "b", "customId": "inline"}, "b", "inline")],
)  # fmt: skip
def test_the_site_of_a_chatbot_with_the_plugins_defaults(
    system: Dict[str, Any], bot_id: Any, custom_id: Any
) -> None:
    site = site_from_chatbot(one(system), "http://e.com/chat/")
    assert (site.url, site.rest_url, site.bot_id, site.custom_id) == ("http://e.com", None, bot_id, custom_id)
    assert (site.session, site.context_id, site.nonce, site.max_message_length) == ("N/A", None, None, None)
    assert site.referer == "http://e.com/chat/"
    absolute = site_from_chatbot(one({**system, "restUrl": "https://api.e.com/wp-json"}), "http://e.com/chat/")
    assert absolute.rest_url == "https://api.e.com/wp-json"
