"""Request building and message checks: no I/O."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from opchatgpts import (
    InvalidMessagesError,
    InvalidMessagesTypeError,
    Opchatgpts,
    Site,
    Timeout,
)
from opchatgpts._protocol.request import build_chat_request, new_chat_id, redirected_request


def body_of(request):
    return json.loads(request.body)


def test_history_goes_in_messages_and_last_user_turn_in_new_message():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is two plus two"},
        {"role": "assistant", "content": "4", "id": "m2", "who": "AI: "},
        {"role": "user", "content": "And three plus three"},
    ]
    request = build_chat_request(Site("https://example.com"), messages, chat_id="abc")
    body = body_of(request)
    assert body["newMessage"] == "And three plus three"
    # The new turn is not repeated in the history: 2.x/3.x would send it twice.
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is two plus two"},
        {"role": "assistant", "content": "4"},
    ]
    assert body["chatId"] == "abc" and body["stream"] is True
    assert body["botId"] == "default" and body["customId"] is None
    assert body["session"] == "N/A"


def test_request_headers_and_url():
    site = Site("https://example.com/", referer="https://example.com/chat/")
    request = build_chat_request(site, [{"role": "user", "content": "hi"}], chat_id="x", nonce="n1")
    assert request.method == "POST"
    assert request.url == "https://example.com/wp-json/mwai-ui/v1/chats/submit"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["X-WP-Nonce"] == "n1"
    assert request.headers["Referer"] == "https://example.com/chat/"
    assert request.headers["Origin"] == "https://example.com"
    assert "n1" not in repr(request)


def test_non_stream_request_asks_for_json():
    request = build_chat_request(
        Site("https://e.com"), [{"role": "user", "content": "hi"}], chat_id="x", stream=False
    )
    assert body_of(request)["stream"] is False
    assert request.headers["Accept"] == "application/json"
    assert "X-WP-Nonce" not in request.headers


@pytest.mark.parametrize(
    "rest_url, expected",
    [
        ("https://e.com/blog/wp-json/", "https://e.com/blog/wp-json/mwai-ui/v1/chats/submit"),
        ("https://e.com/?rest_route=/", "https://e.com/?rest_route=/mwai-ui/v1/chats/submit"),
        ("https://e.com/index.php?rest_route=", "https://e.com/index.php?rest_route=/mwai-ui/v1/chats/submit"),
    ],
)
def test_rest_root_variants(rest_url, expected):
    assert Site("https://e.com", rest_url=rest_url).submit_url == expected


def test_chat_id_is_ten_lowercase_alphanumerics_and_random():
    ids = {new_chat_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[a-z0-9]{10}", i) for i in ids)


@pytest.mark.parametrize(
    "messages, error, match",
    [
        ([], InvalidMessagesError, "empty"),
        ("hello", InvalidMessagesTypeError, "list"),
        (None, InvalidMessagesTypeError, "list"),
        (["hello"], InvalidMessagesTypeError, r"messages\[0\]"),
        ([{"content": "hi"}], InvalidMessagesError, "role"),
        ([{"role": "user"}], InvalidMessagesError, "content"),
        ([{"role": "robot", "content": "hi"}], InvalidMessagesError, "robot"),
        ([{"role": "user", "content": 3}], InvalidMessagesTypeError, "content"),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            InvalidMessagesError,
            "last message",
        ),
        ([{"role": "user", "content": "   "}], InvalidMessagesError, "empty"),
    ],
)
def test_bad_messages_fail_before_any_io(messages, error, match):
    # The URL points nowhere: reaching the network would raise a connection error instead.
    with pytest.raises(error, match=match):
        Opchatgpts.create_completion(None, messages, url="http://127.0.0.1:9")
    with pytest.raises(error, match=match):
        Opchatgpts.create_async_generator(None, messages, url="http://127.0.0.1:9")
    assert issubclass(error, (ValueError, TypeError))


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="temprature"):
        Opchatgpts.create_completion(None, [{"role": "user", "content": "x"}], temprature=1)


def test_opchatgpts_preset_is_data():
    options = Opchatgpts.call_options()
    assert options.site.url == "https://opchatgpts.net"
    assert options.site.context_id == 28 and options.site.bot_id == "default"
    assert options.site.session == "N/A"
    assert options.site.referer == "https://opchatgpts.net/chatgpt-free-use/"
    assert Opchatgpts.supports_message_history and Opchatgpts.supports_gpt_35_turbo


def test_subclass_targets_another_site_without_the_preset():
    class MySite(Opchatgpts):
        url = "https://chat.example.org"

    site = MySite.call_options().site
    assert site.url == "https://chat.example.org"
    assert site.context_id is None and site.referer is None
    assert site.submit_url == "https://chat.example.org/wp-json/mwai-ui/v1/chats/submit"


def test_per_call_settings_override():
    options = Opchatgpts.call_options(
        url="https://x.org", bot_id="b2", custom_id="c", context_id=5, timeout=3, max_retries=0
    )
    assert (options.site.bot_id, options.site.custom_id, options.site.context_id) == ("b2", "c", 5)
    assert options.timeout == Timeout(connect=3, read=3, total=None)
    assert options.retry.max_retries == 0


@pytest.mark.parametrize("bad", [{"url": "ftp://x"}, {"url": "not a url"}, {"bot_id": None}])
def test_bad_site_settings_are_value_errors(bad):
    with pytest.raises(ValueError):
        Opchatgpts.call_options(**bad)


def test_redirect_to_another_origin_drops_the_nonce_and_cookies():
    request = build_chat_request(
        Site("https://a.com", referer="https://a.com/p/"),
        [{"role": "user", "content": "x"}],
        chat_id="c",
        nonce="secret",
        extra_headers={"Cookie": "k=v"},
    )
    same = redirected_request(request, "/elsewhere/wp-json/mwai-ui/v1/chats/submit")
    assert same.headers["X-WP-Nonce"] == "secret" and same.url.startswith("https://a.com/")
    other = redirected_request(request, "https://b.com/submit")
    assert other.url == "https://b.com/submit" and other.body == request.body
    assert not {"x-wp-nonce", "cookie", "referer", "origin"} & {k.lower() for k in other.headers}


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_line_bytes": 0}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": "3"}, TypeError),
        ({"extra_body": "temperature=1"}, TypeError),
        ({"retry": 3}, TypeError),
        ({"verify": "yes"}, TypeError),
        ({"timeout": -1}, ValueError),
        ({"timeout": "10"}, TypeError),
        ({"transport": "curl"}, ValueError),
    ],
)
def test_bad_options_are_clear_errors_before_any_io(kwargs, error):
    with pytest.raises(error):
        Opchatgpts.create_completion(
            None, [{"role": "user", "content": "x"}], url="http://127.0.0.1:9", **kwargs
        )


# -- the request builder itself ---------------------------------------------------------------------


def user(text: str = "hi") -> list:
    return [{"role": "user", "content": text}]


def test_the_body_is_compact_utf8_json():
    request = build_chat_request(Site("https://e.com"), user("héllo 世界"), chat_id="c")
    assert "héllo 世界".encode() in request.body
    assert b'"newMessage":"h' in request.body and b", " not in request.body
    url = "https://e.com/wp-json/mwai-ui/v1/chats/submit"
    assert repr(request) == f"HTTPRequest(POST {url}, {len(request.body)} bytes)"


def test_a_request_cannot_change_and_its_options_are_named():
    request = build_chat_request(Site("https://e.com"), user(), chat_id="c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.url = "https://elsewhere.example/"  # type: ignore[misc]
    with pytest.raises(TypeError):
        build_chat_request(Site("https://e.com"), user(), "c")  # type: ignore[misc]


def test_session_and_extras():
    site = Site("https://e.com", session="from-site", context_id=28)
    body = body_of(build_chat_request(site, user(), chat_id="c"))
    assert body["session"] == "from-site" and body["contextId"] == 28
    request = build_chat_request(
        site, user(), chat_id="c", session="sess-1", extra_body={"temperature": 0.2, "botId": "b2"},
        extra_headers={"X-Extra": "1", "Accept": "application/x-ndjson"},
    )
    body = body_of(request)
    assert body["session"] == "sess-1" and body["temperature"] == 0.2 and body["botId"] == "b2"
    assert request.headers["X-Extra"] == "1" and request.headers["Accept"] == "application/x-ndjson"
    assert body_of(build_chat_request(site, user(), chat_id="c", session=""))["session"] == ""


def test_no_referer_no_origin_and_an_empty_nonce_is_no_nonce():
    request = build_chat_request(Site("https://e.com"), user(), chat_id="c", nonce="")
    assert set(request.headers) == {"Content-Type", "Accept", "User-Agent"}
    assert request.headers["User-Agent"].startswith("opchatgpts/")


def test_the_origin_keeps_the_port():
    site = Site("http://e.com:8080", referer="http://e.com:8080/chat/page?x=1")
    assert build_chat_request(site, user(), chat_id="c").headers["Origin"] == "http://e.com:8080"


def test_the_callers_nonce_header_loses_to_the_nonce():
    request = build_chat_request(
        Site("https://e.com"), user(), chat_id="c", nonce="n1", extra_headers={"X-WP-Nonce": "old"}
    )
    assert request.headers["X-WP-Nonce"] == "n1"


@pytest.mark.parametrize(
    "messages, history, new",
    [
        ((("ignored",),), None, None),
        (({"role": "user", "content": "a"},), [], "a"),
        ([{"role": "system", "content": ""}, {"role": "user", "content": " b "}],
         [{"role": "system", "content": ""}], " b "),
    ],
)
def test_any_sequence_of_mappings(messages, history, new):
    from opchatgpts._protocol.request import split_messages

    if history is None:
        with pytest.raises(InvalidMessagesTypeError, match=r"messages\[0\] must be a dict .* not tuple"):
            split_messages(messages)
        return
    assert split_messages(messages) == (history, new)


def test_messages_read_from_json():
    # Strings that come from a parser, not from literals in the caller's code.
    from opchatgpts._protocol.request import split_messages

    messages = json.loads('[{"role":"system","content":"s"},{"role":"user","content":"hi"}]')
    assert split_messages(messages) == ([{"role": "system", "content": "s"}], "hi")


@pytest.mark.parametrize(
    "messages, error, match",
    [
        (b"hi", InvalidMessagesTypeError, "not bytes"),
        ({"role": "user", "content": "x"}, InvalidMessagesTypeError, "not dict"),
        (iter([{"role": "user", "content": "x"}]), InvalidMessagesTypeError, "list of"),
        ([{"role": 1, "content": "x"}], InvalidMessagesTypeError,
         r"messages\[0\]\['role'\] must be a string"),
        ([{"role": "bot", "content": "x"}], InvalidMessagesError,
         r"messages\[0\]\['role'\] is 'bot'; expected one of \['assistant', 'system', 'user'\]"),
        ([{"role": "user", "content": None}], InvalidMessagesTypeError,
         r"messages\[0\]\['content'\] must be a string or a list of parts, not NoneType"),
        ([{"role": "user", "content": "a"}, {"role": "user"}], InvalidMessagesError,
         r"messages\[1\] has no 'content'"),
        ([{"role": "user", "content": "a"}, {"content": "b"}], InvalidMessagesError,
         r"messages\[1\] has no 'role'"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], InvalidMessagesError,
         "the last message must be the user's turn to send, but its role is 'system'"),
        ([{"role": "user", "content": "\n\t "}], InvalidMessagesError, "the last user message is empty"),
    ],
)
def test_message_errors_say_what_is_wrong(messages, error, match):
    from opchatgpts._protocol.request import split_messages

    with pytest.raises(error, match=match):
        split_messages(messages)


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("https://a.com/x", "https://a.com:443/y", True),
        ("http://a.com/x", "http://a.com:80/y", True),
        ("https://a.com", "https://A.COM/", True),
        ("https://a.com", "https://a.com:80", False),
        ("http://a.com", "http://a.com:443", False),
        ("https://a.com", "http://a.com", False),
        ("https://a.com", "https://b.a.com", False),
        ("https://a.com:8443", "https://a.com:8443/p", True),
    ],
)
def test_same_origin(a, b, same):
    from opchatgpts._protocol.request import same_origin

    assert same_origin(a, b) is same and same_origin(b, a) is same


def test_redirects_keep_method_and_body_and_refuse_other_schemes():
    request = build_chat_request(Site("https://a.com"), user(), chat_id="c", nonce="n",
                                 extra_headers={"Authorization": "Basic x", "X-Keep": "1"})
    same = redirected_request(request, "https://a.com:443/other")
    assert (same.method, same.body, same.headers) == ("POST", request.body, request.headers)
    other = redirected_request(request, "http://a.com/other")  # another scheme is another origin
    assert "X-WP-Nonce" not in other.headers and "Authorization" not in other.headers
    assert other.headers["X-Keep"] == "1" and other.headers["Content-Type"] == "application/json"
    for target in ("ftp://a.com/x", "javascript:alert(1)", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="refusing to follow a redirect"):
            redirected_request(request, target)


# -- messages with parts, the bot's length limit ----------------------------------------------


def test_a_prompt_is_a_one_message_conversation() -> None:
    from opchatgpts._protocol.request import as_messages

    assert as_messages("hi") == [{"role": "user", "content": "hi"}]
    conversation = [{"role": "user", "content": "hi"}]
    assert as_messages(conversation) is conversation
    assert as_messages(()) == ()


def test_content_parts_send_their_text() -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "What is"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "image_url", "image_url": "data:image/png;base64,AAAA"},  # the url alone
            {"type": "text", "text": "on this picture?"},
        ]},
    ]  # fmt: skip
    body = body_of(build_chat_request(Site("https://example.com"), messages, chat_id="abc"))
    assert body["messages"] == [{"role": "system", "content": "Be brief."}]
    assert body["newMessage"] == "What is\non this picture?"
    assert body["messages"][0]["content"] == "Be brief."
    only_images = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}]}]
    fields = {"newFileId": "f-1"}
    request = build_chat_request(Site("https://example.com"), only_images, chat_id="a", file_fields=fields)
    body = body_of(request)
    assert (body["newMessage"], body["newFileId"]) == ("", "f-1")


NOT_PARTS = "messages[0]['content'] must be a string or a list of parts, "
UNKNOWN = "messages[0]['content'][0] is a "


@pytest.mark.parametrize(
    "content, error, says",
    [
        (7, InvalidMessagesTypeError, NOT_PARTS + "not int"),
        (b"hi", InvalidMessagesTypeError, NOT_PARTS + "not bytes"),
        (["hi"], InvalidMessagesTypeError, "messages[0]['content'][0] must be a dict, not str"),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": None}], InvalidMessagesTypeError,
         "messages[0]['content'][1]['text'] must be a string"),
        ([{"type": "text"}], InvalidMessagesTypeError, "messages[0]['content'][0]['text'] must be a string"),
        ([{"type": "image_url", "image_url": {"href": "x"}}], InvalidMessagesTypeError,
         "messages[0]['content'][0] must have an 'image_url' with a string 'url'"),
        ([{"type": "image_url"}], InvalidMessagesTypeError,
         "messages[0]['content'][0] must have an 'image_url' with a string 'url'"),
        ([{"type": "text", "text": "a"}, {"type": "input_audio", "input_audio": {}}], InvalidMessagesError,
         "messages[0]['content'][1] is a 'input_audio' part; only 'text' and 'image_url' parts can be sent "
         "(other files go with files=)"),
        ([{"text": "a"}], InvalidMessagesError, UNKNOWN + "None part"),
        ([{"type": "TEXT", "text": "a"}], InvalidMessagesError, UNKNOWN + "'TEXT' part"),
        ([{"type": "image", "text": "a"}], InvalidMessagesError, UNKNOWN + "'image' part"),
        ([{"type": "zzz", "text": "a"}], InvalidMessagesError, UNKNOWN + "'zzz' part"),
        ([{"type": "a", "text": "a"}], InvalidMessagesError, UNKNOWN + "'a' part"),
    ],
)  # fmt: skip
def test_bad_content_parts_say_which(content: object, error: type, says: str) -> None:
    from opchatgpts._protocol.request import split_messages

    with pytest.raises(error) as raised:
        split_messages([{"role": "user", "content": content}])
    assert type(raised.value) is error
    assert str(raised.value).startswith(says)


def test_the_bots_length_limit() -> None:
    from opchatgpts._protocol.request import split_messages

    site = Site("https://example.com", max_message_length=5)
    assert split_messages([{"role": "user", "content": "abcde"}], site) == ([], "abcde")
    assert split_messages([{"role": "user", "content": "a"}], site) == ([], "a")
    with pytest.raises(InvalidMessagesError) as raised:
        split_messages([{"role": "user", "content": "abcdef"}], site)
    assert str(raised.value) == (
        "the message is 6 characters long; the bot at https://example.com takes at most 5 (its page's "
        "textInputMaxLength)"
    )
    # Only the message sent counts, not the history.
    long_history = [{"role": "assistant", "content": "x" * 100}, {"role": "user", "content": "hi"}]
    assert split_messages(long_history, site)[1] == "hi"
    assert split_messages([{"role": "user", "content": "x" * 10_000}], Site("https://example.com"))


def test_an_empty_message_only_with_files_and_by_name() -> None:
    from opchatgpts._protocol.request import split_messages

    empty = [{"role": "user", "content": ""}]
    assert split_messages(empty, None, allow_empty=True) == ([], "")
    with pytest.raises(TypeError):
        split_messages(empty, None, True)  # type: ignore[misc]


def test_content_parts_give_the_text_and_where_each_image_is() -> None:
    from opchatgpts._protocol.request import content_parts

    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": "data:image/gif;base64,R0lG"},
        {"type": "text", "text": "b"},
    ]
    assert content_parts(parts, 3) == (
        "a\nb", [(0, "data:image/png;base64,AAAA"), (2, "data:image/gif;base64,R0lG")]
    )
    assert content_parts([], 0) == ("", [])
