"""Attachments: the recorded upload exchanges replayed through the emulator.

Each version's captures (``captures/attachments/<version>/``) are replayed in the
order they were recorded (``INDEX.txt``), on one emulator, since they build on each
other: an upload's id is sent by later submits, deleted, expired... Values that
belong to one recording (ids, URLs, nonces, session ids, the port) are learnt from
each pair of answers and translated both ways; then the emulator's answer must be
the recorded one byte for byte, but for token counts, response ids and dates.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from capturefile import PLACEHOLDER, Capture, expand, parse
from multidict import CIMultiDictProxy

from opchatgpts.emulator import Emulator
from opchatgpts.testing import RunningEmulator, serve_emulator_async

ATTACHMENTS = Path(__file__).parent / "captures" / "attachments"
GENERATION_OF_VERSION = {"1.9.99": "open", "2.4.3": "nonce", "3.6.2": "session"}
# The 2x2 PNG of the recordings, as the stand-in model received it.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR42mP4z8DAAMIM/4EAAB/uBfvxq7p3AAAAAElFTkSuQmCC"
)
RECORDED_ENV_ID = "rpopenai"  # the AI environment of the recorded 2.4.3 site
EMULATED_ENV_ID = "emulator"
DATE = re.compile(rb"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d")
PER_RECORDING = (
    (re.compile(rb'(_tokens\\?":)\d+'), rb"\1N"),
    (re.compile(rb"chatcmpl-[0-9a-z]+"), b"chatcmpl-ID"),
)
# The stored file's name in the emulator's answer, per generation.
UPLOAD_NAMES = {
    "open": r"/wp-content/uploads/\d{4}/\d\d/[A-Za-z0-9]{20}\.(png|txt)",
    "nonce": r"/wp-content/uploads/\d{4}/\d\d/(pixel|note|reuse)(-\d+)?\.(png|txt)",
    "session": r"/wp-content/uploads/\d{4}/\d\d/(?P<id>[0-9a-f]{32})\.(png|txt)",
}


def png(size: int) -> bytes:
    """The recorded PNG of ``size`` bytes: the pixel, or a big file of that length."""
    if size == len(PIXEL):
        return PIXEL
    return PIXEL[:33] + bytes(size - 33)  # a PNG header, then padding


def recorded_order(version: str) -> list[str]:
    """The version's capture names, in the order INDEX.txt lists (and they were recorded)."""
    names = re.findall(rf"^{re.escape(version)}/(\S+):", (ATTACHMENTS / "INDEX.txt").read_text(), re.M)
    assert sorted(names) == sorted(p.stem for p in (ATTACHMENTS / version).glob("*.txt")), version
    return names


class Answer(NamedTuple):
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class Replay:
    """One version's captures replayed in order, with what was learnt on the way."""

    def __init__(self, running: RunningEmulator, version: str) -> None:
        self.running = running
        self.emulator: Emulator = running.emulator
        self.generation = GENERATION_OF_VERSION[version]
        self.version = version
        self.host = running.url.split("//", 1)[1]
        self.to_emulator: dict[str, str] = {}
        """Recorded value -> the emulator's (ids, URL paths, nonces, session ids)."""
        self.uploaded: dict[str, str] = {}
        """Capture name -> the recorded id its upload answered with."""
        self.numeric_offset: int | None = None
        """Recorded database id - the emulator's, for the same file (2.x)."""
        self.problems: list[str] = []

    # ---- translation -------------------------------------------------------------------

    def learn(self, recorded: Any, emulated: Any) -> None:
        """Remember that ``recorded`` is, in the emulator, ``emulated``."""
        if isinstance(recorded, str) and isinstance(emulated, str) and recorded != emulated:
            known = self.to_emulator.setdefault(recorded, emulated)
            if known != emulated:
                self.problems.append(f"{recorded} was {known}, now {emulated}")

    def _pairs(self, reverse: bool) -> list[tuple[str, str]]:
        pairs = [(a, b) for a, b in self.to_emulator.items()]
        pairs += [(a.replace("/", "\\/"), b.replace("/", "\\/")) for a, b in pairs if "/" in a]
        if reverse:
            pairs = [(b, a) for a, b in pairs]
        return sorted(pairs, key=lambda pair: -len(pair[0]))

    def to_emulated(self, data: bytes, recorded_host: str) -> bytes:
        for recorded, emulated in self._pairs(reverse=False):
            data = data.replace(recorded.encode(), emulated.encode())
        return data.replace(recorded_host.encode(), self.host.encode())

    def to_recorded(self, data: bytes, recorded_host: str) -> bytes:
        for emulated, recorded in self._pairs(reverse=True):
            data = data.replace(emulated.encode(), recorded.encode())
        return data.replace(self.host.encode(), recorded_host.encode())

    # ---- one exchange ----------------------------------------------------------------

    async def exchange(self, name: str) -> None:
        capture = parse(ATTACHMENTS / self.version / f"{name}.txt")
        recorded_host = capture.request_headers["Host"]
        self.prepare(name)
        headers = {}
        for header in ("Content-Type", "Cookie", "X-WP-Nonce", "Accept"):
            if header in capture.request_headers:
                value = capture.request_headers[header]
                headers[header] = self.to_emulated(value.encode(), recorded_host).decode()
        body = expand(capture.request_body, png)
        if "files_delete" in name and self.emulator.traits.files_delete == "numeric":
            body = self.numeric_ids(body)
        else:
            body = self.to_emulated(body, recorded_host)
        if "multipart" in headers.get("Content-Type", ""):
            assert len(body) == capture.request_body_length, f"{name}: cannot rebuild the body"
        path = self.to_emulated(capture.request_path.encode(), recorded_host).decode()
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
            session.request(
                capture.request_method,
                self.running.url + path,
                data=io.BytesIO(body) if body else None,  # big bodies too, without a warning
                headers=headers,
                skip_auto_headers=("Accept", "Content-Type"),
            ) as response,
        ):
            answer = Answer(response.status, response.headers, await response.read())
        self.emulator.image_remote_upload = "data"
        self.learn_from(name, capture, answer)
        for problem in self.compare(name, capture, answer):
            self.problems.append(f"{self.version}/{name}: {problem}")

    def prepare(self, name: str) -> None:
        """Do to the emulator what the recorder did to the site before this exchange."""
        if "after_expiry_cleanup" in name:  # the row was backdated and the cleanup ran
            self.emulator.expire_uploads(self.to_emulator[self.uploaded["upload_png_for_expiry"]])
        if name == "submit_png_remote_upload_url":  # the site option, set for this one
            self.emulator.image_remote_upload = "url"

    def numeric_ids(self, body: bytes) -> bytes:
        """A files/delete body for a site that reads each entry as a database id (MySQL
        reads ``"2613c6..."`` as 2613), with each entry's leading number made the
        emulator's. Not the emulator's refId: its leading digits, which change with the
        port, could spell a row the recording's did not."""
        assert self.numeric_offset is not None, "no files/list seen yet"
        files = []
        for entry in json.loads(body)["files"]:
            digits = entry[: len(entry) - len(entry.lstrip("0123456789"))]
            files.append(str(int(digits) - self.numeric_offset) + entry[len(digits) :] if digits else entry)
        return json.dumps({"files": files}).encode()

    def learn_from(self, name: str, capture: Capture, answer: Answer) -> None:
        recorded_nonce = capture.response_header("X-WP-Nonce")
        if recorded_nonce is not None:
            self.learn(recorded_nonce, answer.headers.get("X-WP-Nonce"))
        for cookie in ("mwai_session_id", "PHPSESSID"):
            recorded_cookie = _cookie(capture.response_header_values("Set-Cookie"), cookie)
            self.learn(recorded_cookie, _cookie(answer.headers.getall("Set-Cookie", []), cookie))
        if name == "page":
            recorded, emulated = (_data_system(capture.response_body), _data_system(answer.body))
            self.learn(recorded["restNonce"], emulated["restNonce"])
            return
        recorded_json, emulated_json = _json(capture.response_body), _json(answer.body)
        if not (isinstance(recorded_json, dict) and isinstance(emulated_json, dict)):
            return
        for key in ("sessionId", "restNonce"):
            self.learn(recorded_json.get(key), emulated_json.get(key))
        if recorded_json.get("success") and "id" in recorded_json.get("data", {}):
            recorded_file, emulated_file = recorded_json["data"], emulated_json.get("data", {})
            self.uploaded[name] = recorded_file["id"]
            self.learn(recorded_file["id"], emulated_file.get("id"))
            self.learn(_path(recorded_file["url"]), _path(emulated_file.get("url", "")))
            self.check_upload_name(name, emulated_file)
        if name.endswith("files_list") and recorded_json.get("success"):
            self.learn_numbers(recorded_json, emulated_json)

    def check_upload_name(self, name: str, answer: dict[str, str]) -> None:
        match = re.fullmatch(UPLOAD_NAMES[self.generation], _path(answer["url"]))
        if match is None:
            self.problems.append(f"{name}: not named like the {self.generation} generation: {answer}")
        elif self.generation == "session":
            if match.group("id") != answer["id"]:
                self.problems.append(f"{name}: the stored name is not the id: {answer}")
        elif hashlib.md5(answer["url"].encode()).hexdigest() != answer["id"]:
            self.problems.append(f"{name}: the id is not md5(url): {answer}")

    def learn_numbers(self, recorded: dict[str, Any], emulated: dict[str, Any]) -> None:
        numbers = {row["refId"]: int(row["id"]) for row in emulated["data"]["files"]}
        for row in recorded["data"]["files"]:
            ours = numbers.get(self.to_emulator.get(row["refId"], ""))
            if ours is not None:
                offset = int(row["id"]) - ours
                if self.numeric_offset not in (None, offset):
                    self.problems.append(f"database ids do not follow the recording's: {row}")
                self.numeric_offset = offset

    # ---- comparison --------------------------------------------------------------------

    def compare(self, name: str, capture: Capture, answer: Answer) -> list[str]:
        problems = []
        if answer.status != capture.status:
            problems.append(f"status {answer.status}, recorded {capture.status}: {answer.body[:300]!r}")
        for header in ("Content-Type", "Cache-Control", "Transfer-Encoding"):
            ours, recorded = answer.headers.get(header), capture.response_header(header)
            if ours != recorded:
                problems.append(f"{header}: {ours!r}, not {recorded!r}")
        if ("X-WP-Nonce" in answer.headers) != (capture.response_header("X-WP-Nonce") is not None):
            problems.append("X-WP-Nonce header")
        for cookie in ("mwai_session_id", "PHPSESSID"):
            ours = _cookie(answer.headers.getall("Set-Cookie", []), cookie)
            if (ours is None) != (_cookie(capture.response_header_values("Set-Cookie"), cookie) is None):
                problems.append(f"Set-Cookie {cookie}")
        if problems:
            return problems
        recorded_host = capture.request_headers["Host"]
        if name == "page":
            return self.compare_page(capture, answer)
        if capture.status == 404 and capture.request_method == "GET":
            return []  # the theme's 404 page
        if PLACEHOLDER.search(capture.response_body):  # an uploaded file, served
            same = answer.body == expand(capture.response_body, png)
            same = same and answer.headers.get("Content-Length") == capture.response_header("Content-Length")
            return [] if same else ["not the uploaded file"]
        ours = self.to_recorded(answer.body, recorded_host)
        if name.endswith("files_list") and capture.status == 200:
            return self.compare_list(_json(capture.response_body), _json(ours))
        if _normalise(ours) != _normalise(capture.response_body):
            return [f"body\n  ours:     {ours[:600]!r}\n  recorded: {capture.response_body[:600]!r}"]
        return []

    def compare_page(self, capture: Capture, answer: Answer) -> list[str]:
        ours = _container(answer.body)
        recorded_nonce = _data_system(capture.response_body)["restNonce"]
        problems = []
        for attribute, value in _container(capture.response_body).items():
            value = value.replace(capture.request_headers["Host"], self.host)
            if recorded_nonce:
                value = value.replace(recorded_nonce, self.emulator.current_nonce)
            if ours.get(attribute) != value:
                problems.append(f"data-{attribute}: {ours.get(attribute)}")
        return problems

    def compare_list(self, recorded: Any, ours: Any) -> list[str]:
        """Our files/list rows against the recorded rows of the same files.

        The recorded site also lists files from earlier runs, which we do not have.
        """
        rows = {row["refId"]: row for row in recorded["data"]["files"]}
        order = list(rows)
        problems, seen = [], []
        if ours["data"]["total"] != str(len(self.emulator.uploads)):
            problems.append(f"total {ours['data']['total']}")
        for row in ours["data"]["files"]:
            theirs = rows.get(row["refId"])
            if theirs is None:
                problems.append(f"an unrecorded row: {row}")
                continue
            seen.append((row["updated"], theirs["updated"], order.index(row["refId"])))
            mine = json.loads(DATE.sub(b"DATE", json.dumps(row).encode()).replace(b"emulator", b"rpopenai"))
            theirs = json.loads(DATE.sub(b"DATE", json.dumps(theirs).encode()))
            theirs["id"] = str(int(theirs["id"]) - (self.numeric_offset or 0))
            if list(mine.items()) != list(theirs.items()):
                problems.append(f"row\n  ours:     {mine}\n  recorded: {theirs}")
        # Newest first, and rows of the same second in id order: the recorded rows show
        # it, and ours must follow it whichever rows a replay's clock put in one second.
        if not _newest_first(recorded["data"]["files"]):
            problems.append("the recorded rows are not newest first, then in id order")
        if not _newest_first(ours["data"]["files"]):
            problems.append("rows not newest first, then in id order")
        # Where rows differ in second both here and there, they keep the recorded order.
        for (ours_at, theirs_at, index), (next_ours_at, next_theirs_at, next_index) in zip(seen, seen[1:]):
            if ours_at != next_ours_at and theirs_at != next_theirs_at and index > next_index:
                problems.append("rows not in the recorded order")
        return problems


def _newest_first(rows: list[dict[str, Any]]) -> bool:
    """Whether files/list rows come by ``updated`` descending, then by id ascending."""
    keys = [(row["updated"], int(row["id"])) for row in rows]
    by_id = sorted(keys, key=lambda key: key[1])
    return keys == sorted(by_id, key=lambda key: key[0], reverse=True)  # a stable sort


def _normalise(body: bytes) -> bytes:
    for pattern, replacement in PER_RECORDING:
        body = pattern.sub(replacement, body)
    return body


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _path(url: str) -> str:
    return "/" + url.split("//", 1)[-1].split("/", 1)[-1] if url else ""


def _cookie(set_cookies: list[str], name: str) -> str | None:
    for value in set_cookies:
        if value.startswith(name + "="):
            return value.split("=", 1)[1].split(";", 1)[0]
    return None


def _container(page: bytes) -> dict[str, str]:
    match = re.search(r"<div class='mwai-chatbot-container'((?: data-\w+='[^']*')+)>", page.decode())
    assert match is not None, "no chatbot container"
    return dict(re.findall(r" data-(\w+)='([^']*)'", match.group(1)))


def _data_system(page: bytes) -> dict[str, Any]:
    return json.loads(html.unescape(_container(page)["system"]))  # type: ignore[no-any-return]


VISION_SITE: dict[str, Any] = {
    "bot_ids": ("vision", "default"),
    "context_id": 5,
    "page_path": "/vision-chat/",
    "image_upload": True,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("version", sorted(GENERATION_OF_VERSION))
async def test_replays_the_recorded_attachment_exchanges(version: str) -> None:
    generation = GENERATION_OF_VERSION[version]
    options = dict(VISION_SITE, event_logs=False) if generation == "session" else VISION_SITE
    names = recorded_order(version)
    async with serve_emulator_async(generation, **options) as running:
        replay = Replay(running, version)
        for name in names:
            await replay.exchange(name)
    assert not replay.problems, "\n".join(replay.problems)
    assert len(names) == {"1.9.99": 33, "2.4.3": 40, "3.6.2": 41}[version]


def test_every_capture_is_replayed() -> None:
    assert sum(len(recorded_order(version)) for version in GENERATION_OF_VERSION) == 114

