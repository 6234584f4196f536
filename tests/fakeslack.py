"""A local fake of the Slack Web API for tests: records every call and answers like Slack.

A threaded HTTP server on 127.0.0.1 (random port). Point a `WebClient` at `fake.api_url` and
`response_url`s at `fake.response_url(...)`. Slack's failure modes are switched on per method:
`fail(method, status=429 | 500, ...)`, `hang(method, ...)` (answer later than any client waits) and
`delay(method, seconds)` (answer normally, but slowly). Files go through Slack's upload flow:
`files.getUploadURLExternal`, a POST of the bytes to the URL it answered (kept in `files`; its
failures are switched on as method `upload`), then `files.completeUploadExternal`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]
BOT_USER = "U0SLOBOT"
BOT_ID = "B0SLOBOT"
TEAM = "T0FAKE"
DROP = -1  # a rule's status: close the connection without answering


@dataclass(frozen=True)
class Call:
    """One request the fake received: the Web API method (or `response_url`) and its parameters."""

    method: str
    params: JSON
    at: float  # time.monotonic() when it arrived
    status: int  # HTTP status it was answered with (0: the client gave up before the answer)
    token: str | None = None
    path: str = ""


@dataclass
class Rule:
    """Misbehaviour for one method: for the next `times` calls and/or until `until` (monotonic)."""

    method: str
    status: int  # 429, 500..., 0 for a hang, DROP
    times: int | None
    until: float | None
    retry_after: int = 1
    hang_seconds: float = 0.0
    apply: bool = False  # hang only: perform the call (e.g. post the message), then never answer
    delay_seconds: float = 0.0  # a slow Slack: wait this long, then answer as usual

    def active(self, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        return self.times is None or self.times > 0


@dataclass
class File:
    """A file given to the fake by Slack's upload flow: asked for, its bytes sent, then shared."""

    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    data: bytes | None = None  # what was POSTed to its upload URL
    title: str | None = None
    shared: list[tuple[str, str | None]] = field(default_factory=list)  # (channel, thread_ts)


@dataclass
class Channel:
    id: str
    name: str
    members: list[str] = field(default_factory=list)
    messages: list[JSON] = field(default_factory=list)  # in posting order; replies carry thread_ts


class FakeSlack:
    """`with FakeSlack() as slack:` ... `slack.calls_of("chat.postMessage")`."""

    def __init__(self, token: str = "xoxb-test", members_page_size: int = 2) -> None:
        self.token = token
        self.app_token = "xapp-test"
        self.socket_url: str | None = None  # where apps.connections.open sends a Socket Mode app
        self.members_page_size = members_page_size  # small: the bot must follow `next_cursor`
        self._lock = threading.Condition()
        self._release = threading.Event()  # set on close: frees hung requests
        self.calls: list[Call] = []
        self.responses: list[tuple[str, JSON]] = []  # (response_url id, payload) from respond()
        self.views: dict[str, list[JSON]] = {}  # user -> every view published for them
        self.usergroups: dict[str, list[str]] = {}
        self.files: dict[str, File] = {}  # by file ID, from files.getUploadURLExternal on
        self._channels: dict[str, Channel] = {}
        self._rules: list[Rule] = []
        self._last_ts = 0.0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True)

    # --- life --------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()  # joins the request threads: every socket is closed after
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The `base_url` for a WebClient (`SLACK_API_URL`)."""
        return self.url + "/api/"

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    UPLOAD = "upload"  # the method name of POSTs to an upload URL, for `fail`, `hang` and `calls_of`

    # --- workspace set-up --------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str | None = None, members: Iterable[str] = ()) -> None:
        with self._lock:
            channel = self._channels.setdefault(channel_id, Channel(channel_id, name or channel_id.lower()))
            if name:
                channel.name = name
            channel.members = list(dict.fromkeys([*channel.members, *members]))

    def set_members(self, channel_id: str, members: Iterable[str]) -> None:
        with self._lock:
            self._channel(channel_id).members = list(members)

    # --- misbehaviour ------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 429,
        times: int | None = None,
        seconds: float | None = None,
        retry_after: int = 1,
    ) -> None:
        """Answer `method` with `status` (429 carries `Retry-After`) for the next `times` calls
        and/or for `seconds`; with neither, until `reset()`."""
        until = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            self._rules.append(Rule(method, status, times, until, retry_after=retry_after))

    def hang(self, method: str, *, times: int = 1, seconds: float = 30.0, apply: bool = True) -> None:
        """Keep the next `times` calls of `method` waiting `seconds` (longer than the client waits).
        `apply`: Slack did the work (posted the message) and only the answer is lost."""
        with self._lock:
            self._rules.append(Rule(method, 0, times, None, hang_seconds=seconds, apply=apply))

    def delay(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Answer `method` normally but only after `seconds` (every call, or the next `times`)."""
        with self._lock:
            self._rules.append(Rule(method, 200, times, None, delay_seconds=seconds))

    def drop(self, method: str, *, times: int = 1, apply: bool = True) -> None:
        """Close the connection of the next `times` calls of `method` without an answer
        (`apply`: after doing the work), as a proxy or a network failure would."""
        with self._lock:
            self._rules.append(Rule(method, DROP, times, None, apply=apply))

    def heal(self, method: str | None = None) -> None:
        """Stop misbehaving (for `method`, or for all); the record of calls stays."""
        with self._lock:
            self._rules = [r for r in self._rules if method is not None and r.method != method]

    def reset(self) -> None:
        """Forget misbehaviour rules and recorded calls (the workspace and its messages stay)."""
        with self._lock:
            self._rules.clear()
            self.calls.clear()
            self.responses.clear()

    # --- what happened -----------------------------------------------------------------------

    def calls_of(self, method: str, ok_only: bool = False) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (not ok_only or c.status == 200)]

    def messages(self, channel_id: str, uploads: bool = False) -> list[JSON]:
        """Every message in the channel, thread replies included, in posting order (copies).

        Files shared by `files.completeUploadExternal` (the charts) are messages too, in the channel's
        history as in Slack's, but only listed here with `uploads=True`: `uploads()` lists them."""
        with self._lock:
            channel = self._channels.get(channel_id)
            found = channel.messages if channel else []
            return json.loads(json.dumps([m for m in found if uploads or "files" not in m]))

    def uploads(self, channel_id: str) -> list[JSON]:
        """The messages that shared files in the channel (or one of its threads), in order."""
        return [m for m in self.messages(channel_id, uploads=True) if "files" in m]

    def all_messages(self, uploads: bool = False) -> list[JSON]:
        with self._lock:
            found = [m for c in self._channels.values() for m in c.messages if uploads or "files" not in m]
            return json.loads(json.dumps(sorted(found, key=lambda m: float(m["ts"]))))

    def wait_until(self, predicate: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
        """Block until `predicate()` is truthy (re-checked after every request); AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if predicate():
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake Slack: timed out after {timeout:g} s waiting for {what}")
                self._lock.wait(min(left, 0.25))

    def wait_response(self, key: str, timeout: float = 30.0) -> JSON:
        """The payload posted to `response_url(key)` (by `respond()`), once it has come."""
        found: list[JSON] = []

        def arrived() -> bool:
            found[:] = [payload for k, payload in self.responses if k == key]
            return bool(found)

        self.wait_until(arrived, timeout, f"an answer at response_url {key}")
        return found[0]

    def wait_calls(
        self, method: str, count: int = 1, timeout: float = 30.0, ok_only: bool = True
    ) -> list[Call]:
        self.wait_until(
            lambda: len(self.calls_of(method, ok_only)) >= count,
            timeout,
            f"{count} successful call(s) of {method}" if ok_only else f"{count} call(s) of {method}",
        )
        return self.calls_of(method, ok_only)

    # --- request handling (called by _Handler threads) ----------------------------------------

    def _channel(self, key: str, by_name: bool = False) -> Channel:
        """A channel by ID, or by name (`#name` or `name`) where Slack takes one (posting);
        an unknown ID is created on first use."""
        name = key.lstrip("#")
        for channel in self._channels.values():
            if channel.id == key or (by_name and channel.name == name):
                return channel
        if key[:1] in ("C", "G", "D") and key.isalnum() and key.isupper():
            self._channels[key] = Channel(key, key.lower())
            return self._channels[key]
        raise _SlackError("channel_not_found")

    def _next_ts(self) -> str:
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _rule_for(self, method: str) -> Rule | None:
        now = time.monotonic()
        with self._lock:
            self._rules = [r for r in self._rules if r.active(now)]
            for rule in self._rules:
                if rule.method == method:
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def handle(self, path: str, params: JSON, token: str | None) -> tuple[int, JSON, dict[str, str]]:
        """(HTTP status, JSON body, extra headers) for one request."""
        started = time.monotonic()
        if path.startswith("/upload/"):
            return self._receive(path.removeprefix("/upload/"), params, started)
        if path.startswith("/response/"):
            key = path.removeprefix("/response/")
            with self._lock:
                self.responses.append((key, params))
            self._record(Call("response_url", params, started, 200, token, path))
            return 200, {"ok": True}, {}
        method = path.removeprefix("/api/")
        rule = self._rule_for(method)
        if rule is not None and rule.delay_seconds:
            self._release.wait(rule.delay_seconds)
            rule = None
        if rule is not None and rule.status == DROP:
            if rule.apply:
                self._answer(method, params, token)
            self._record(Call(method, params, started, 0, token, path))
            return DROP, {}, {}
        if rule is not None and rule.status:
            self._record(Call(method, params, started, rule.status, token, path))
            if rule.status == 429:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(rule.retry_after)}
            return rule.status, {"ok": False, "error": "internal_error"}, {}
        if rule is not None:  # a hang
            answer = self._answer(method, params, token) if rule.apply else None
            self._record(Call(method, params, started, 0, token, path))
            self._release.wait(rule.hang_seconds)
            return (200, answer, {}) if answer is not None else (500, {"ok": False, "error": "timeout"}, {})
        body = self._answer(method, params, token)
        self._record(Call(method, params, started, 200, token, path))
        return 200, body, {}

    def _receive(self, file_id: str, params: JSON, started: float) -> tuple[int, JSON, dict[str, str]]:
        """The bytes of a file POSTed to its upload URL (no token: the URL is the credential)."""
        rule = self._rule_for(self.UPLOAD)
        data = params.get("_raw", b"")
        if rule is not None and rule.status not in (0, DROP):
            self._record(Call(self.UPLOAD, {"file_id": file_id}, started, rule.status, None, "/upload/"))
            return rule.status, {"ok": False, "error": "internal_error"}, {}
        with self._lock:
            found = self.files.get(file_id)
            if found is None:
                status = 404
            else:
                found.data = data
                status = 200
        self._record(
            Call(self.UPLOAD, {"file_id": file_id, "bytes": len(data)}, started, status, None, "/upload/")
        )
        return status, {"ok": status == 200}, {}

    def _answer(self, method: str, params: JSON, token: str | None) -> JSON:
        if method == "apps.connections.open":  # Socket Mode: asked with the app-level token
            if token != self.app_token or not self.socket_url:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url}
        if token is None:
            return {"ok": False, "error": "not_authed"}
        if token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        handler = _METHODS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        try:
            with self._lock:
                return {"ok": True, **handler(self, params)}
        except _SlackError as err:
            return {"ok": False, "error": str(err)}

    # --- the Web API methods -----------------------------------------------------------------

    def _auth_test(self, params: JSON) -> JSON:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "slo-bot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: JSON) -> JSON:
        channel = self._channel(_required(params, "channel"), by_name=True)
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _SlackError("no_text")
        message: JSON = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "ts": self._next_ts(),
            "text": params.get("text", ""),
        }
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key):
                message[key] = _decoded(params[key])
        if params.get("thread_ts"):
            parent = _find(channel, str(params["thread_ts"]))
            message["thread_ts"] = parent["ts"]
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent.setdefault("thread_ts", parent["ts"])
        channel.messages.append(message)
        return {"channel": channel.id, "ts": message["ts"], "message": _without(message, "metadata")}

    def _upload_url(self, params: JSON) -> JSON:
        filename = _required(params, "filename")
        length = int(params.get("length") or 0)
        if length <= 0:
            raise _SlackError("missing_argument")
        alt = params.get("alt_txt")
        if alt and len(str(alt)) > 1000:
            raise _SlackError("alt_txt_too_large")
        file_id = f"F{len(self.files) + 1:08d}"
        self.files[file_id] = File(file_id, filename, length, str(alt) if alt else None)
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, params: JSON) -> JSON:
        wanted = _decoded(params.get("files") or "[]")
        if not isinstance(wanted, list) or not wanted:
            raise _SlackError("invalid_arguments")
        files = []
        for item in wanted:
            found = self.files.get(str(item.get("id")))
            if found is None or found.data is None:
                raise _SlackError("file_not_found")
            if len(found.data) != found.length:
                raise _SlackError("file_size_mismatch")  # fewer bytes came than were announced
            found.title = item.get("title") or found.filename
            files.append(found)
        shown = [{"id": f.id, "name": f.filename, "title": f.title, "mimetype": "image/png"} for f in files]
        if params.get("channel_id"):
            channel = self._channel(str(params["channel_id"]))
            message: JSON = {
                "type": "message",
                "user": BOT_USER,
                "bot_id": BOT_ID,
                "ts": self._next_ts(),
                "text": params.get("initial_comment") or "",
                "files": shown,
                "upload": True,
            }
            if params.get("thread_ts"):
                parent = _find(channel, str(params["thread_ts"]))
                message["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent.setdefault("thread_ts", parent["ts"])
            channel.messages.append(message)
            for f in files:
                f.shared.append((channel.id, message.get("thread_ts")))
        return {"files": [{"id": f["id"], "title": f["title"]} for f in shown]}

    def _update(self, params: JSON) -> JSON:
        channel = self._channel(_required(params, "channel"))
        message = _find(channel, _required(params, "ts"))
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                message[key] = _decoded(params[key])
        message["edited"] = {"user": BOT_USER, "ts": self._next_ts()}
        message["updates"] = message.get("updates", 0) + 1
        return {"channel": channel.id, "ts": message["ts"], "text": message.get("text", "")}

    def _post_ephemeral(self, params: JSON) -> JSON:
        channel = self._channel(_required(params, "channel"), by_name=True)
        _required(params, "user")
        return {"message_ts": self._next_ts(), "channel": channel.id}

    def _views_publish(self, params: JSON) -> JSON:
        user = _required(params, "user_id")
        view = _decoded(params.get("view"))
        if not isinstance(view, dict) or view.get("type") != "home":
            raise _SlackError("invalid_arguments")
        self.views.setdefault(user, []).append(view)
        return {"view": {"id": f"V{len(self.views[user]):08d}", **view}}

    def _members(self, params: JSON) -> JSON:
        channel = self._channel(_required(params, "channel"))
        limit = min(int(params.get("limit") or 100), self.members_page_size)
        start = int(params.get("cursor") or 0)
        page = channel.members[start : start + limit]
        more = start + limit < len(channel.members)
        return {"members": page, "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _list(self, params: JSON) -> JSON:
        channels = [
            {"id": c.id, "name": c.name, "is_channel": c.id[0] == "C", "is_private": c.id[0] == "G",
             "num_members": len(c.members)}
            for c in self._channels.values()
            if c.id[0] in "CG"
        ]  # fmt: skip
        limit = min(int(params.get("limit") or 100), self.members_page_size)
        start = int(params.get("cursor") or 0)
        more = start + limit < len(channels)
        return {
            "channels": channels[start : start + limit],
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _history(self, params: JSON) -> JSON:
        channel = self._channel(_required(params, "channel"))
        top = [m for m in channel.messages if m.get("thread_ts") in (None, m["ts"])]
        oldest = float(params.get("oldest") or 0)
        found = [m for m in reversed(top) if float(m["ts"]) > oldest]  # newest first, like Slack
        return self._page(found, params)

    def _replies(self, params: JSON) -> JSON:
        channel = self._channel(_required(params, "channel"))
        parent = _find(channel, _required(params, "ts"))
        thread = [parent] + [
            m for m in channel.messages if m.get("thread_ts") == parent["ts"] and m is not parent
        ]
        return self._page(thread, params)

    def _page(self, found: list[JSON], params: JSON) -> JSON:
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        page = found[start : start + limit]
        if not _truthy(params.get("include_all_metadata")):
            page = [_without(m, "metadata") for m in page]
        more = start + limit < len(found)
        return {
            "messages": json.loads(json.dumps(page)),
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _usergroup_users(self, params: JSON) -> JSON:
        group = _required(params, "usergroup")
        if group not in self.usergroups:
            raise _SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}


_METHODS: Mapping[str, Callable[[FakeSlack, JSON], JSON]] = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._post_message,
    "chat.update": FakeSlack._update,
    "files.getUploadURLExternal": FakeSlack._upload_url,
    "files.completeUploadExternal": FakeSlack._complete_upload,
    "chat.postEphemeral": FakeSlack._post_ephemeral,
    "views.publish": FakeSlack._views_publish,
    "conversations.members": FakeSlack._members,
    "conversations.list": FakeSlack._list,
    "conversations.history": FakeSlack._history,
    "conversations.replies": FakeSlack._replies,
    "usergroups.users.list": FakeSlack._usergroup_users,
}


class _SlackError(Exception):
    """An error Slack answers with `{"ok": false, "error": ...}` and HTTP 200."""


def _required(params: JSON, name: str) -> str:
    value = params.get(name)
    if not value:
        raise _SlackError(f"missing_argument:{name}" if name != "channel" else "channel_not_found")
    return str(value)


def _find(channel: Channel, ts: str) -> JSON:
    for message in channel.messages:
        if message["ts"] == ts:
            return message
    raise _SlackError("message_not_found" if channel.messages else "thread_not_found")


def _decoded(value: Any) -> Any:
    """Form-encoded calls carry blocks, attachments, metadata and views as JSON strings."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        return json.loads(value)
    return value


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _without(message: JSON, key: str) -> JSON:
    return {k: v for k, v in message.items() if k != key}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSlack/1"

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        params: JSON = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path.startswith("/upload/"):  # a file's bytes, as they are
            params["_raw"] = body
            body = b""
        raw = body.decode("utf-8")
        if "json" in (self.headers.get("Content-Type") or ""):
            params.update(json.loads(raw or "{}"))
        elif raw:
            params.update({k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()})
        auth = self.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ").strip() or params.pop("token", None) or None
        status, body, headers = fake.handle(parts.path, params, token)
        if parts.path.startswith(("/upload/", "/response/")):
            # one request a connection: an idle kept-alive one would hold `close` (which joins the
            # request threads) until the client closed it
            headers = {**headers, "Connection": "close"}
            self.close_connection = True
        if status == DROP:
            self.close_connection = True
            return
        data = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the calls are recorded; the test output stays readable
