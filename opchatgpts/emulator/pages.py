"""The chatbot page: a WordPress page holding one chatbot container.

The container's ``data-params``, ``data-system`` and ``data-theme`` attributes are
byte for byte what the recorded plugin versions print (``captures/*/page.txt``),
but for the site's address, nonce and the emulator's knobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .php import html_attr, php_json

__all__ = ["ChatbotPage", "render_page"]


@dataclass(frozen=True)
class ChatbotPage:
    """What the page shows of the site and its first chatbot."""

    generation: str
    """``"open"``, ``"nonce"`` or ``"session"``."""
    site_root: str
    """``http://host:port``."""
    rest_url: str
    """The REST root, as ``restUrl``."""
    bot_id: str
    context_id: int
    """The page's post id, as ``contextId``."""
    nonce: str
    """The current nonce; printed as ``restNonce`` on the nonce generation only."""
    text_input_max_length: int
    """The bot's ``textInputMaxLength``."""
    image_upload: bool
    """The bot offers uploads (``imageUpload``; and ``fileUpload`` on 3.x)."""
    event_logs: bool
    """The site streams rich events (``eventLogs``, 3.x)."""


def render_page(page: ChatbotPage) -> str:
    """The page's HTML."""
    attributes = (
        ("params", _params(page)),
        ("system", _system(page)),
        ("theme", _theme(page)),
    )
    data = "".join(f" data-{name}='{html_attr(php_json(value))}'" for name, value in attributes)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en-US">\n'
        "<head>\n"
        '\t<meta charset="UTF-8" />\n'
        "<title>ChatGPT Free Use &#8211; AI Engine emulator</title>\n"
        f'<link rel="https://api.w.org/" href="{html_attr(page.rest_url)}/" />\n'
        "</head>\n"
        f'<body class="page-template-default page page-id-{page.context_id}">\n'
        f"<div class=\"entry-content\"><div class='mwai-chatbot-container'{data}></div></div>\n"
        "</body>\n"
        "</html>\n"
    )


def _params(page: ChatbotPage) -> dict[str, Any]:
    """The chatbot's ``data-params`` (display settings), in the recorded key order."""
    limit = page.text_input_max_length
    # fmt: off
    if page.generation == "session":
        return {
            "aiName": "AI: ", "userName": "User: ", "guestName": "Guest: ", "textSend": "Send",
            "textClear": "Clear", "imageUpload": page.image_upload, "fileUpload": page.image_upload,
            "multiUpload": False, "maxUploads": 1, "fileUploads": int(page.image_upload), "mode": "chat",
            "textInputPlaceholder": "Type your message...", "textInputMaxLength": limit,
            "textCompliance": "", "startSentence": "Hi! How can I help you?", "localMemory": True,
            "themeId": "chatgpt", "window": False, "icon": "", "iconText": "", "iconTextDelay": 1,
            "iconAlt": "AI Engine Chatbot", "iconPosition": "bottom-right", "centerOpen": False,
            "width": "", "openDelay": "", "iconBubble": False, "windowAnimation": "zoom",
            "fullscreen": False, "copyButton": False, "pdfButton": False,
            "headerSubtitle": "Discuss with", "containerType": "standard", "headerType": "standard",
            "messagesType": "standard", "inputType": "standard", "footerType": "standard",
        }
    params: dict[str, Any] = {
        "aiName": "AI: ", "userName": "User: ", "guestName": "Guest: ", "textSend": "Send",
        "textClear": "Clear",
    }
    if page.image_upload:
        params["imageUpload"] = True
    params.update({
        "textInputPlaceholder": "Type your message...", "textInputMaxLength": limit,
        "textCompliance": "", "startSentence": "Hi! How can I help you?", "localMemory": True,
        "themeId": "chatgpt", "window": False, "icon": "", "iconText": "",
    })
    if page.generation == "open":
        params.update({"iconAlt": "AI Chatbot Avatar", "iconPosition": "bottom-right"})
    else:
        params.update({
            "iconTextDelay": 1, "iconAlt": "AI Engine Chatbot", "iconPosition": "bottom-right",
            "iconBubble": False,
        })
    params.update({"fullscreen": False, "copyButton": False})
    # fmt: on
    return params


def _system(page: ChatbotPage) -> dict[str, Any]:
    """The chatbot's ``data-system`` (how to reach it), in the recorded key order."""
    plugin_url = page.site_root + "/wp-content/plugins/ai-engine"
    # fmt: off
    if page.generation == "session":
        return {
            "botId": page.bot_id, "customId": None, "userData": None, "sessionId": None,
            "restNonce": None, "contextId": page.context_id, "pluginUrl": plugin_url,
            "restUrl": page.rest_url, "stream": True, "debugMode": False,
            "eventLogs": page.event_logs, "speech_recognition": False, "speech_synthesis": False,
            "typewriter": False, "crossSite": False, "actions": [], "blocks": [], "shortcuts": [],
        }
    return {
        "botId": page.bot_id, "customId": None, "userData": None, "sessionId": "N/A",
        "restNonce": page.nonce if page.generation == "nonce" else None,
        "contextId": page.context_id, "pluginUrl": plugin_url + "/", "restUrl": page.rest_url,
        "debugMode": True, "typewriter": False, "speech_recognition": False,
        "speech_synthesis": False, "stream": True,
    }
    # fmt: on


def _theme(page: ChatbotPage) -> dict[str, Any]:
    """The chatbot's ``data-theme``."""
    theme: dict[str, Any] = {
        "type": "internal",
        "name": "ChatGPT",
        "themeId": "chatgpt",
        "settings": [],
        "style": "",
    }
    if page.generation == "session":
        theme["cssUrl"] = page.site_root + "/wp-content/plugins/ai-engine/themes/chatgpt.css"
    return theme
