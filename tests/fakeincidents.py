"""A local fake of the incident tools for tests: PagerDuty (Events API v2 and REST), Opsgenie, Squadcast
and a signed-webhook receiver, each under its own path prefix of one threaded server on 127.0.0.1.

It checks payloads against the vendors' documented fields and limits, answers as they do, keeps each
incident's state, and misbehaves on request: `fail(vendor, ...)`, `hang(vendor, ...)`, `down(vendor, ...)`.
Where a vendor documents no wording (Squadcast's errors, the webhook), the texts are the fake's own.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

JSON = dict[str, Any]
DROP = -1  # answer nothing: close the connection

ROUTING_KEY = "0123456789abcdef0123456789abcdef"  # an Events API v2 integration key: 32 characters
PAGERDUTY_TOKEN = "u+fakePagerDutyRestToken"
PAGERDUTY_FROM = "oncall@example.com"
PAGERDUTY_ACCEPT = "application/vnd.pagerduty+json;version=2"
ESCALATION_POLICY = "PFAKEEP"
OPSGENIE_KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"
SQUADCAST_KEY = "fakeSquadcastKey0123456789"
HOOK_SECRET = "fake-hook-secret"
VENDORS = ("pagerduty", "pagerduty-api", "opsgenie", "squadcast", "hook")
STATES = {"pagerduty-api": "pagerduty"}  # the REST API acts on the Events API's incidents


@dataclass(frozen=True)
class Call:
    """One request the fake received."""

    vendor: str
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any  # the parsed body; None when there was none or it was not JSON
    body: bytes
    status: int  # what it was answered with; 0: the connection was dropped
    at: float  # time.monotonic() when it arrived


@dataclass
class Upstream:
    """One incident (PagerDuty, Squadcast, webhook) or alert (Opsgenie) as the vendor holds it."""

    key: str  # dedup key, alias or event_id
    id: str
    status: str = "triggered"  # triggered | acknowledged | resolved (Opsgenie: open | acked | closed)
    level: int = 1  # escalation level
    priority: str | None = None  # Opsgenie
    severity: str | None = None  # PagerDuty; the webhook's incident.severity
    summary: str = ""
    triggers: int = 0  # trigger events folded into it
    actions: list[str] = field(default_factory=list)  # every change, in order
    escalations: list[str] = field(default_factory=list)  # Opsgenie escalation names
    last: JSON = field(default_factory=dict)  # the last payload that changed it


@dataclass
class Rule:
    vendor: str
    kind: str  # fail | hang | down
    status: int = 0
    times: int | None = None
    until: float | None = None  # monotonic
    retry_after: int | None = None
    seconds: float = 0.0
    echo: bool = False  # fail: the error quotes the request, credentials and all

    def active(self, now: float) -> bool:
        return (self.until is None or now < self.until) and (self.times is None or self.times > 0)


class FakeIncidents:
    """`with FakeIncidents() as fake:` ... `fake.incident("opsgenie", alias).status`."""

    def __init__(
        self,
        *,
        routing_key: str = ROUTING_KEY,
        pagerduty_token: str = PAGERDUTY_TOKEN,
        pagerduty_from: str = PAGERDUTY_FROM,
        escalation_levels: int = 3,
        opsgenie_key: str = OPSGENIE_KEY,
        squadcast_key: str = SQUADCAST_KEY,
        hook_secret: str = HOOK_SECRET,
    ) -> None:
        self.routing_key = routing_key
        self.pagerduty_token = pagerduty_token
        self.pagerduty_from = pagerduty_from
        self.escalation_levels = escalation_levels
        self.opsgenie_key = opsgenie_key
        self.squadcast_key = squadcast_key
        self.hook_secret = hook_secret
        self.calls: list[Call] = []
        self.out_of_order: list[tuple[str, str, str]] = []  # (vendor, key, action) for unknown keys
        self._state: dict[str, dict[str, Upstream]] = {v: {} for v in VENDORS if v not in STATES}
        self._deliveries: set[str] = set()  # webhook delivery ids seen
        self._rules: list[Rule] = []
        self._lock = threading.RLock()
        self._recorded = threading.Condition(self._lock)  # notified on every call recorded
        self._release = threading.Event()  # set on close: frees hung requests
        self._sockets: set[socket.socket] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long close() waits for the loop to notice
            name="fake-incidents",
            daemon=True,
        )

    # --- life and addresses ------------------------------------------------------------------

    def __enter__(self) -> FakeIncidents:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        with self._lock:  # idle keep-alive connections would otherwise keep their threads waiting
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def pagerduty_url(self) -> str:
        return self.url + "/pagerduty/v2/enqueue"

    @property
    def pagerduty_api_url(self) -> str:
        return self.url + "/pagerduty-api"

    @property
    def opsgenie_url(self) -> str:
        return self.url + "/opsgenie"

    @property
    def squadcast_url(self) -> str:
        return f"{self.url}/squadcast/v2/incidents/api/{self.squadcast_key}"

    @property
    def hook_url(self) -> str:
        return self.url + "/hook"

    def target_documents(self, *names: str, routing_key: str | None = None) -> str:
        """OpenSLO AlertNotificationTargets pointed at this fake, by name: `pd` (PagerDuty), `genie`
        (Opsgenie), `squad` (Squadcast), `hook` (a signed webhook); each document led by `---`."""
        targets = {
            "pd": ("pagerduty", {"routing-key": routing_key or self.routing_key, "url": self.pagerduty_url}),
            "genie": ("opsgenie", {"api-key": self.opsgenie_key, "url": self.opsgenie_url}),
            "squad": ("squadcast", {"url": self.squadcast_url}),
            "hook": ("webhook", {"url": self.hook_url, "secret": self.hook_secret}),
        }
        documents = []
        for name in names:
            kind, settings = targets[name]
            metadata = {"name": name, "annotations": {f"slo-bot/{k}": v for k, v in settings.items()}}
            documents.append(
                "---\napiVersion: openslo/v1\nkind: AlertNotificationTarget\n"
                f"metadata: {json.dumps(metadata)}\nspec: {json.dumps({'target': kind})}\n"
            )
        return "".join(documents)

    # --- misbehaviour ------------------------------------------------------------------------

    def fail(
        self,
        vendor: str,
        *,
        status: int = 500,
        times: int | None = None,
        until: float | None = None,
        retry_after: int | None = None,
        echo: bool = False,
    ) -> None:
        """Answer `vendor`'s requests with `status` (and `Retry-After: retry_after`) for the next `times`
        requests and/or `until` seconds from now; with neither, until `heal()`. With `echo`, the
        error message quotes the request (URL, headers, body) as a careless gateway's does."""
        self._add(Rule(vendor, "fail", status, times, _deadline(until), retry_after, echo=echo))

    def hang(self, vendor: str, seconds: float, *, times: int | None = 1) -> None:
        """Hold `vendor`'s next `times` requests `seconds` before doing the work and answering, as a slow
        vendor does: a client that gave up meanwhile still changed the state."""
        self._add(Rule(vendor, "hang", times=times, seconds=seconds))

    def down(self, vendor: str, seconds: float) -> None:
        """For `seconds`, drop `vendor`'s connections without an answer."""
        self._add(Rule(vendor, "down", until=_deadline(seconds)))

    def heal(self, vendor: str | None = None) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if vendor is not None and r.vendor != vendor]

    def _add(self, rule: Rule) -> None:
        if rule.vendor not in VENDORS:
            raise ValueError(f"unknown vendor {rule.vendor!r}; one of {VENDORS}")
        with self._lock:
            self._rules.append(rule)

    # --- what happened -----------------------------------------------------------------------

    def calls_of(self, vendor: str, *, ok_only: bool = False) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.vendor == vendor and (not ok_only or 200 <= c.status < 300)]

    def wait_calls(self, vendor: str, count: int, timeout: float = 10.0) -> list[Call]:
        """Block until `vendor` has `count` recorded calls (a hung one is recorded when it is done)."""
        with self._lock:
            if not self._recorded.wait_for(lambda: len(self.calls_of(vendor)) >= count, timeout):
                raise AssertionError(f"fake: {vendor} got {len(self.calls_of(vendor))} calls, not {count}")
            return self.calls_of(vendor)

    def incident(self, vendor: str, key: str) -> Upstream | None:
        """A copy of the vendor's latest incident (or alert) for `key`."""
        with self._lock:
            found = self._state[STATES.get(vendor, vendor)].get(key)
            return copy.deepcopy(found)

    def incidents(self, vendor: str) -> dict[str, Upstream]:
        with self._lock:
            return copy.deepcopy(self._state[STATES.get(vendor, vendor)])

    # --- request handling (called by _Handler threads) ----------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, JSON | None, dict[str, str]]:
        """(status, JSON body or None, extra headers) for one request."""
        arrived = time.monotonic()
        parts = urlsplit(target)
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        vendor = segments[0] if segments and segments[0] in VENDORS else ""
        query = parse_qs(parts.query)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = _UNREADABLE
        rule = self._rule_for(vendor, arrived)
        status, answer, extra = 0, None, {}
        if rule is not None and rule.kind == "down":
            status = DROP
        elif rule is not None and rule.kind == "fail":
            quoted = f"{method} {target} {headers} {raw.decode(errors='replace')}" if rule.echo else ""
            status, answer = rule.status, _failure(vendor, rule.status, quoted)
            if rule.retry_after is not None:
                extra = {"Retry-After": str(rule.retry_after)}
        else:
            if rule is not None:
                self._release.wait(rule.seconds)
            with self._lock:
                status, answer = self._answer(vendor, method, segments[1:], query, headers, raw, body)
        shown = None if body is _UNREADABLE else body
        with self._lock:
            self.calls.append(Call(vendor, method, parts.path, headers, shown, raw, max(status, 0), arrived))
            self._recorded.notify_all()
        return status, answer, extra

    def _rule_for(self, vendor: str, now: float) -> Rule | None:
        with self._lock:
            self._rules = [r for r in self._rules if r.active(now)]
            for rule in self._rules:
                if rule.vendor == vendor:
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    def _answer(
        self, vendor: str, method: str, path: list[str], query: dict[str, list[str]], headers: dict[str, str],
        raw: bytes, body: Any,
    ) -> tuple[int, JSON | None]:  # fmt: skip
        if vendor == "pagerduty" and method == "POST" and path == ["v2", "enqueue"]:
            return _pagerduty_event(self, body)
        if vendor == "pagerduty-api":
            return _pagerduty_rest(self, method, path, query, headers, body)
        if vendor == "opsgenie" and path[:2] == ["v2", "alerts"]:
            return _opsgenie(self, method, path[2:], query, headers, body)
        if vendor == "squadcast" and method == "POST" and path[:3] == ["v2", "incidents", "api"]:
            return _squadcast(self, path[3:], headers, raw, body)
        if vendor == "hook" and method == "POST" and not path:
            return _hook(self, headers, raw, body)
        return 404, {"message": "Not Found"}

    # --- state, shared by the vendors --------------------------------------------------------

    def open_incident(self, vendor: str, key: str, body: JSON, summary: str) -> Upstream:
        """Fold a trigger into the open incident for `key`, or open a new one."""
        incidents = self._state[vendor]
        found = incidents.get(key)
        if found is None or found.status == "resolved":
            found = incidents[key] = Upstream(key, id=f"Q{uuid.uuid4().hex[:12].upper()}")
        found.triggers += 1
        found.summary = summary or found.summary
        found.actions.append("trigger")
        found.last = body
        return found

    def change(self, vendor: str, key: str, action: str, status: str | None, body: Any) -> Upstream | None:
        """Apply a non-trigger action; an action for a key never triggered is recorded as out of order."""
        found = self._state[vendor].get(key)
        if found is None:
            self.out_of_order.append((vendor, key, action))
            return None
        found.actions.append(action)
        if found.status != "resolved" and status is not None:
            found.status = status
        found.last = body if isinstance(body, dict) else {}
        return found


_UNREADABLE = object()


def _deadline(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


def _failure(vendor: str, status: int, quoted: str = "") -> JSON:
    text = {429: "Too many requests", 400: "Bad request"}.get(status, "Internal server error")
    text += f" for {quoted}" if quoted else ""
    if vendor == "pagerduty":
        return {"status": text, "message": text, "errors": [text]}
    if vendor == "pagerduty-api":
        return {"error": {"message": text, "code": 2001}}
    if vendor == "opsgenie":
        return {"message": text, "took": 0.001, "requestId": str(uuid.uuid4())}
    if vendor == "squadcast":
        return {"meta": {"status": status, "error_message": text}}
    return {"error": text}


def iso_time(value: Any) -> bool:
    """Whether `value` is an ISO 8601 timestamp with a zone."""
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


HOOK_TOLERANCE = 300  # seconds: how old a signature's timestamp the receiver still takes


def hook_signature_ok(secret: str, raw: bytes, header: str, now: float) -> bool:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as a receiver checks it: the time within
    HOOK_TOLERANCE of its own clock (a replay is refused), one `v1` matching."""
    fields = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for name, _, value in fields if name == "t"]
    macs = [value for name, _, value in fields if name == "v1"]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or not macs:
        return False
    if abs(now - int(stamps[0])) > HOOK_TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), stamps[0].encode() + b"." + raw, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")) for mac in macs)


# --- PagerDuty: Events API v2 and the REST calls escalation needs ---------------------------------

PD_ACTIONS = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}
PD_SEVERITIES = ("critical", "error", "warning", "info")
PD_NOT_FOUND: JSON = {"error": {"message": "Not Found", "code": 2100}}


def _pagerduty_event(fake: FakeIncidents, body: Any) -> tuple[int, JSON | None]:
    if not isinstance(body, dict):
        return 400, {
            "status": "Unrecognized object",
            "message": "Event object format is unrecognized",
            "errors": ["JSON parse error"],
        }
    errors = _pagerduty_errors(fake, body)
    if errors:
        return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    action = body["event_action"]
    key = body.get("dedup_key") or uuid.uuid4().hex  # PagerDuty makes one up for a keyless trigger
    if action == "trigger":
        found = fake.open_incident("pagerduty", key, body, body["payload"]["summary"])
        found.severity = body["payload"]["severity"]
    else:
        fake.change("pagerduty", key, action, PD_ACTIONS[action], body)
    return 202, {"status": "success", "message": "Event processed", "dedup_key": key}


def _pagerduty_errors(fake: FakeIncidents, body: JSON) -> list[str]:
    errors = []
    key = body.get("routing_key")
    if not isinstance(key, str) or not key.strip():
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    elif key != fake.routing_key:
        errors.append("Invalid routing key")
    action = body.get("event_action")
    if action not in PD_ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup = body.get("dedup_key")
    if dedup is not None and not (isinstance(dedup, str) and len(dedup) <= 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        errors += _pagerduty_payload_errors(body.get("payload"))
    links = body.get("links", [])
    if not isinstance(links, list) or not all(isinstance(x, dict) and _text(x.get("href")) for x in links):
        errors.append("'links' must be a list of objects with an 'href'")
    errors += [
        f"'{n}' must be a string" for n in ("client", "client_url") if n in body and not _text(body[n])
    ]
    return errors


def _pagerduty_payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = [
        f"'payload.{n}' is missing or blank" for n in ("summary", "source") if not _text(payload.get(n))
    ]
    if len(str(payload.get("summary", ""))) > 1024:
        errors.append("Length of 'payload.summary' exceeds 1024 characters")
    if payload.get("severity") not in PD_SEVERITIES:
        errors.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
    if "timestamp" in payload and not iso_time(payload["timestamp"]):
        errors.append("'payload.timestamp' is not an ISO 8601 timestamp")
    errors += [
        f"'payload.{n}' must be a string"
        for n in ("component", "group", "class")
        if n in payload and not isinstance(payload[n], str)
    ]
    if not isinstance(payload.get("custom_details", {}), dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _pagerduty_rest(
    fake: FakeIncidents, method: str, path: list[str], query: dict[str, list[str]], headers: dict[str, str],
    body: Any,
) -> tuple[int, JSON | None]:  # fmt: skip
    if headers.get("authorization") != f"Token token={fake.pagerduty_token}":
        return 401, {"error": {"message": "Unauthorized", "code": 2006}}
    if headers.get("accept") != PAGERDUTY_ACCEPT:
        return 400, _pd_invalid(f"the Accept header must be {PAGERDUTY_ACCEPT}")
    incidents = fake._state["pagerduty"]
    page = {"limit": 25, "offset": 0, "more": False, "total": None}
    if method == "GET" and path == ["incidents"]:
        keys, statuses = query.get("incident_key", []), query.get("statuses[]", [])
        found = [
            _pd_incident(u)
            for u in incidents.values()
            if (not keys or u.key in keys) and (not statuses or u.status in statuses)
        ]
        return 200, {"incidents": found, **page}
    if method == "GET" and path == ["oncalls"]:
        policies, users = query.get("escalation_policy_ids[]", []), query.get("user_ids[]", [])
        oncalls = [
            {
                "escalation_policy": {"id": ESCALATION_POLICY, "type": "escalation_policy_reference"},
                "escalation_level": level,
                "user": {"id": _pd_user(level), "type": "user_reference"},
            }
            for level in range(1, fake.escalation_levels + 1)
            if (not policies or ESCALATION_POLICY in policies) and (not users or _pd_user(level) in users)
        ]
        return 200, {"oncalls": oncalls, **page}
    if method == "PUT" and len(path) == 2 and path[0] == "incidents":
        found = next((u for u in incidents.values() if u.id == path[1]), None)
        if headers.get("from") != fake.pagerduty_from:
            return 400, _pd_invalid("the From header must be the email of a user of the account")
        if found is None:
            return 404, PD_NOT_FOUND
        return _pagerduty_update(fake, found, body)
    return 404, PD_NOT_FOUND


def _pagerduty_update(fake: FakeIncidents, found: Upstream, body: Any) -> tuple[int, JSON | None]:
    change = body.get("incident") if isinstance(body, dict) else None
    if not isinstance(change, dict) or change.get("type") not in ("incident", "incident_reference"):
        return 400, _pd_invalid("incident.type must be incident or incident_reference")
    if found.status == "resolved":
        return 400, {"error": {"message": "Incident Already Resolved", "code": 2001}}
    level = change.get("escalation_level")
    if level is not None:
        if type(level) is not int or not 1 <= level <= fake.escalation_levels:
            return 400, _pd_invalid(f"escalation_level must be between 1 and {fake.escalation_levels}")
        found.level = level
        found.status = "triggered"  # the new level is notified and has to acknowledge again
        found.actions.append("escalate")
    status = change.get("status")
    if status is not None:
        if status not in ("triggered", "acknowledged", "resolved"):
            return 400, _pd_invalid("incident.status must be triggered, acknowledged or resolved")
        found.status = status
        found.actions.append(status)
    found.last = body
    return 200, {"incident": _pd_incident(found)}


def _pd_incident(found: Upstream) -> JSON:
    assignee = {"assignee": {"id": _pd_user(found.level), "type": "user_reference"}}
    return {
        "id": found.id,
        "type": "incident",
        "incident_key": found.key,
        "status": found.status,
        "title": found.summary,
        "urgency": "high",
        "escalation_policy": {"id": ESCALATION_POLICY, "type": "escalation_policy_reference"},
        "assignments": [] if found.status == "resolved" else [assignee],
    }


def _pd_user(level: int) -> str:
    return f"PUSER{level:02d}"  # one user on call per level of the fake escalation policy


def _pd_invalid(why: str) -> JSON:
    return {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": [why]}}


# --- Opsgenie Alert API v2 ---------------------------------------------------------------------------

OG_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
OG_LIMITS = {"message": 130, "alias": 512, "description": 15_000, "entity": 512, "user": 100, "source": 100,
             "note": 25_000}  # fmt: skip
OG_ACTIONS = {"acknowledge": "acknowledged", "unacknowledge": "triggered", "close": "resolved",
              "escalate": None}  # fmt: skip
OG_RECIPIENTS = ("team", "user", "escalation", "schedule")


def _opsgenie(
    fake: FakeIncidents, method: str, path: list[str], query: dict[str, list[str]], headers: dict[str, str],
    body: Any,
) -> tuple[int, JSON | None]:  # fmt: skip
    answer: JSON = {"took": 0.004, "requestId": str(uuid.uuid4())}
    if headers.get("authorization") != f"GenieKey {fake.opsgenie_key}":
        return 401, {"message": "Could not authenticate", **answer}
    body = {} if body is None else body  # every field of an alert action is optional
    if not isinstance(body, dict):
        return 400, {"message": "Could not parse the request body as a JSON object", **answer}
    if method == "POST" and not path:
        errors = _opsgenie_create_errors(body)
    elif method == "POST" and len(path) == 2 and path[1] in OG_ACTIONS:
        errors = _opsgenie_limits(body)
        if path[1] == "escalate" and not _recipient(body.get("escalation"), "escalation"):
            errors["escalation"] = "Escalation should have type escalation and an id or a name."
    elif method == "PUT" and len(path) == 2 and path[1] == "priority":
        errors = (
            {} if body.get("priority") in OG_PRIORITIES else {"priority": "Priority should be one of P1-P5."}
        )
    else:
        return 404, {"message": "Api not found", **answer}
    if errors:
        return 422, {"message": "Request body is not processable. Please check the errors.", "errors": errors,
                     **answer}  # fmt: skip
    # Opsgenie accepts a request and carries it out later: an unknown alert is no error in the answer
    if not path:
        found = fake.open_incident("opsgenie", body.get("alias") or body["message"], body, body["message"])
        if found.triggers == 1:
            found.priority = body.get("priority", "P3")
    else:
        # without identifierType=alias Opsgenie reads the identifier as an alert id, which it is not
        key = path[0] if query.get("identifierType") == ["alias"] else f"id:{path[0]}"
        changed = fake.change("opsgenie", key, path[1], OG_ACTIONS.get(path[1]), body)
        if changed is not None and changed.status != "resolved":
            if path[1] == "escalate":
                changed.level += 1
                changed.escalations.append(body["escalation"].get("name") or body["escalation"].get("id"))
            elif path[1] == "priority":
                changed.priority = body["priority"]
    return 202, {"result": "Request will be processed", **answer}


def _opsgenie_create_errors(body: JSON) -> dict[str, str]:
    errors = _opsgenie_limits(body)
    if not _text(body.get("message")):
        errors["message"] = "Message can not be empty."
    if "priority" in body and body["priority"] not in OG_PRIORITIES:
        errors["priority"] = "Priority should be one of P1-P5."
    tags = body.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > 20
        or not all(isinstance(t, str) and len(t) <= 50 for t in tags)
    ):
        errors["tags"] = "Tags should be at most 20 strings of at most 50 characters."
    details = body.get("details", {})
    if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
        errors["details"] = "Details should map strings to strings."
    elif sum(len(k) + len(v) for k, v in details.items()) > 8000:
        errors["details"] = "Details can not be longer than 8000 characters."
    responders = body.get("responders", [])
    if not isinstance(responders, list) or not all(_recipient(r) for r in responders):
        errors["responders"] = "Responders should have a type and an id, a name or a username."
    return errors


def _opsgenie_limits(body: JSON) -> dict[str, str]:
    errors = {}
    for name, limit in OG_LIMITS.items():
        if name in body and not isinstance(body[name], str):
            errors[name] = f"{name.capitalize()} should be a string."
        elif name in body and len(body[name]) > limit:
            errors[name] = f"{name.capitalize()} can not be longer than {limit} characters."
    return errors


def _recipient(value: Any, kind: str | None = None) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") in OG_RECIPIENTS
        and (kind is None or value["type"] == kind)
        and any(_text(value.get(k)) for k in ("id", "name", "username"))
    )


# --- Squadcast Incident Webhook ----------------------------------------------------------------------

SQUADCAST_MAX_BYTES = 30 * 1024  # documented: larger payloads are answered 413


def _squadcast(
    fake: FakeIncidents, path: list[str], headers: dict[str, str], raw: bytes, body: Any
) -> tuple[int, JSON | None]:
    if path != [fake.squadcast_key]:
        return 404, _squadcast_error(404, "no service has this webhook key")
    if len(raw) > SQUADCAST_MAX_BYTES:
        return 413, _squadcast_error(413, "payload is larger than 30KB")
    if "application/json" not in headers.get("content-type", ""):
        return 400, _squadcast_error(400, "Content-Type must be application/json")
    if not isinstance(body, dict):
        return 400, _squadcast_error(400, "the body is not a JSON object")
    status, event_id = body.get("status", "trigger"), body.get("event_id")
    errors = [] if status in ("trigger", "resolve") else ["status must be trigger or resolve"]
    if event_id is not None and not _text(event_id):
        errors.append("event_id must be a non-empty string")
    if status == "trigger":
        errors += [f"{n} is mandatory" for n in ("message", "description") if not _text(body.get(n))]
        tags = body.get("tags", {})
        if not isinstance(tags, dict) or not all(_tag(v) for v in tags.values()):
            errors.append("tags must map names to strings or to {value, color}")
    elif not event_id:
        errors.append("event_id is needed to resolve")
    if errors:
        return 400, _squadcast_error(400, "; ".join(errors))
    if status == "trigger":
        fake.open_incident("squadcast", event_id or uuid.uuid4().hex, body, body["message"])
    else:
        fake.change("squadcast", event_id, "resolve", "resolved", body)
    return 202, None  # Squadcast documents no answer body


def _squadcast_error(status: int, why: str) -> JSON:
    return {"meta": {"status": status, "error_message": why}}


def _tag(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("value"), str))


# --- the generic webhook receiver -------------------------------------------------------------------

HOOK_ACTIONS = {"trigger": "triggered", "raise": None, "acknowledge": "acknowledged",
                "unacknowledge": "triggered", "escalate": None, "resolve": "resolved"}  # fmt: skip


def _hook(fake: FakeIncidents, headers: dict[str, str], raw: bytes, body: Any) -> tuple[int, JSON | None]:
    given = headers.get("x-slo-bot-signature", "")
    if not hook_signature_ok(fake.hook_secret, raw, given, time.time()):
        return 401, {"error": "the signature does not match the body, or its time is not now"}
    errors = _hook_errors(headers, body)
    if errors:
        return 400, {"error": "; ".join(errors)}
    if body["id"] in fake._deliveries:  # a retried delivery: acknowledged, not applied twice
        return 200, {"ok": True, "duplicate": True}
    fake._deliveries.add(body["id"])
    key, action = body["incident"]["dedup_key"], body["action"]
    if action == "trigger":
        found = fake.open_incident("hook", key, body, body["incident"]["summary"])
        found.severity = body["incident"]["severity"]
    else:
        changed = fake.change("hook", key, action, HOOK_ACTIONS[action], body)
        if changed is not None and action == "escalate" and changed.status != "resolved":
            changed.level += 1
        if changed is not None and action == "raise" and changed.status != "resolved":
            changed.severity = body["incident"]["severity"]  # the same incident, more severe
    return 200, {"ok": True}


def _hook_errors(headers: dict[str, str], body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    errors = [] if "application/json" in headers.get("content-type", "") else ["Content-Type is not JSON"]
    if body.get("version") != 1:
        errors.append("version must be 1")
    if not _text(body.get("id")):
        errors.append("id is missing")
    elif headers.get("x-slo-bot-delivery") != body["id"]:
        errors.append("X-Slo-Bot-Delivery is not the id")
    if body.get("action") not in HOOK_ACTIONS:
        errors.append(f"action must be one of {', '.join(HOOK_ACTIONS)}")
    elif headers.get("x-slo-bot-event") != body["action"]:
        errors.append("X-Slo-Bot-Event is not the action")
    if not (iso_time(body.get("at")) and body["at"].endswith("Z")):
        errors.append("at must be ISO 8601 in UTC, ending in Z")
    if body.get("actor") is not None and not isinstance(body["actor"], str):
        errors.append("actor must be a string or null")
    if not isinstance(body.get("note"), str):
        errors.append("note must be a string")
    incident = body.get("incident")
    if not isinstance(incident, dict):
        return [*errors, "incident is missing"]
    names = ("dedup_key", "slo", "service", "severity", "summary")
    errors += [f"incident.{n} must be a string" for n in names if not isinstance(incident.get(n), str)]
    if not incident.get("dedup_key"):
        errors.append("incident.dedup_key is blank")
    if not isinstance(incident.get("details"), dict):
        errors.append("incident.details must be an object")
    links = incident.get("links")
    if not isinstance(links, list) or not all(
        isinstance(x, dict) and _text(x.get("text")) and _text(x.get("url")) for x in links
    ):
        errors.append("incident.links must be a list of {text, url}")
    return errors


def _text(value: Any) -> bool:
    """A non-blank string."""
    return isinstance(value, str) and bool(value.strip())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeIncidents/1"

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:  # type: ignore[attr-defined]
            self.server.fake._sockets.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        with self.server.fake._lock:  # type: ignore[attr-defined]
            self.server.fake._sockets.discard(self.connection)  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake: FakeIncidents = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = fake.handle(self.command, self.path, headers, raw)
        if status == DROP:
            self.close_connection = True
            return
        data = json.dumps(body).encode() if body is not None else b""
        try:
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client timed out and left
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the calls are recorded; the test output stays readable
