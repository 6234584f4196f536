"""The SLO page of `slo-bot run` (`GET /slos/NAME`), as a Slack user reaches it: the signed link from
the breach message's *View SLO* button and `/slo show`, the page's numbers, breaches and audit trail
read from a stored history of known shape, its chart as headless Chromium draws it, and 403 for a
link that expired or was changed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from sqlmodel import Session

from bot import charts
from bot.catalogue import load_paths
from bot.checksums import data_checksum
from bot.domain import Bucket
from bot.links import sign
from bot.messages import span
from bot.store import db, history, repo
from bot.store.models import (
    AlertRecord,
    BreachEventRecord,
    BreachRecord,
    SilenceRecord,
    SnapshotRecord,
    SubscriptionRecord,
)
from tests.fakeslack import FakeSlack
from tests.slack.harness import ALERTS, RESPONDER, SECOND, BotProcess

KEY = "page-links-key-0123456789abcdef"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
START = NOW - 30 * DAY
BURNING = (START + 5 * DAY, START + 15 * DAY)  # burn 2: a third of the budget left after it
RESOLVED = (START + 20 * DAY, START + 21 * DAY)  # a page breach, acknowledged after 4 minutes
HOSTILE = "<script>alert(1)</script> & <b>bold</b>"
DASHBOARD = "https://grafana.example.com/d/search"  # search-latency's own: its button keeps it

# The source answers nothing (port 9): the bot's ticks fail and leave the stored history alone.
CATALOGUE = f"""\
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: gone}}
spec:
  type: Prometheus
  connectionDetails: {{url: "http://127.0.0.1:9", timeout: 1s}}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  annotations: {{slo-bot/channel: {ALERTS}}}
spec:
  service: checkout
  indicator:
    metadata: {{name: checkout-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: gone, spec: {{query: 'requests_total{{code="200"}}'}}}}}}
        total: {{metricSource: {{metricSourceRef: gone, spec: {{query: requests_total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: search-latency
  annotations: {{slo-bot/channel: C0SEARCH, slo-bot/dashboard: "{DASHBOARD}"}}
spec:
  service: search
  indicator:
    metadata: {{name: search-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: gone, spec: {{query: 'search_total{{code="200"}}'}}}}}}
        total: {{metricSource: {{metricSourceRef: gone, spec: {{query: search_total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.99}}]
"""


def _buckets() -> list[Bucket]:
    found = []
    at = START - DAY
    while at < NOW:
        step = MINUTE if at >= NOW - 7 * HOUR else 5 * MINUTE if at >= NOW - 3 * DAY - HOUR else HOUR
        total = 1000.0 * (step / MINUTE)
        burn = 2.0 if BURNING[0] <= at < BURNING[1] else 0.0
        found.append(Bucket(at, step, good=total * (1 - 0.001 * burn), total=total, covered=step))
        at += step
    return found


def store_history(database_url: str, tmp_path: Path) -> None:
    """The SLO, 30 days of buckets, its newest evaluation, a resolved and an open breach, a silence
    (with a reason that is markup) and a subscription."""
    path = tmp_path / "slos.yaml"
    path.write_text(CATALOGUE)
    entries = load_paths([path]).entries
    engine = db.make_engine(database_url)
    with Session(engine) as session:
        for entry in entries:
            repo.upsert_slo(
                session=session,
                name=entry.slo.name,
                service=entry.slo.service,
                documents=entry.documents,
                data_checksum=data_checksum(entry.slo),
                now=START,
            )
        session.flush()
        ids = {r.name: r.id or 0 for r in repo.list_slos(session=session)}
        slo_id = ids["checkout-availability"]
        history.replace_buckets(
            session=session, slo_id=slo_id, start=START - DAY, end=NOW, buckets=_buckets()
        )
        burns = {"5m": 0.0, "30m": 0.0, "1h": 0.0, "2h": 0.0, "6h": 0.0, "1d": 0.0, "3d": 0.0}
        session.add(
            SnapshotRecord(
                slo_id=slo_id,
                evaluated_at=NOW - MINUTE,
                sli=1 - 0.001 * 2 * 10 / 30,
                good=0.0,
                total=43_200_000.0,
                consumed_ratio=2 / 3,
                remaining_ratio=1 / 3,
                burn_rates=json.dumps({**burns, "3d": 0.25}),
                state="ok",
                coverage_ratio=1.0,
            )
        )
        resolved = BreachRecord(
            slo_id=slo_id,
            kind="burn",
            severity="page",
            peak="page",
            state="resolved",
            opened_at=RESOLVED[0],
            resolved_at=RESOLVED[1],
            acknowledged_at=RESOLVED[0] + 4 * MINUTE,
            acknowledged_by=RESPONDER,
        )
        opened = NOW - 20 * MINUTE
        page_burns = json.dumps({"1h": 20.0, "5m": 40.0})
        firing = BreachRecord(
            slo_id=slo_id,
            kind="burn",
            severity="page",
            peak="page",
            state="firing",
            opened_at=opened,
            burn_rates=page_burns,
            reason="burn 20x over 1h and 40x over 5m (threshold 14.4x)",
        )
        session.add_all([resolved, firing])
        session.flush()
        assert resolved.id is not None and firing.id is not None
        alert = AlertRecord(
            slo_id=slo_id,
            breach_id=firing.id,
            key="page",
            state="firing",
            since=opened,
            fired_at=opened,
            burn_rates=page_burns,
            reason=firing.reason,
        )
        session.add(alert)
        searching = BreachRecord(
            slo_id=ids["search-latency"],
            kind="burn",
            severity="page",
            peak="page",
            state="firing",
            opened_at=opened,
            burn_rates=page_burns,
            reason=firing.reason,
        )
        session.add(searching)
        session.flush()
        session.add(
            AlertRecord(
                slo_id=ids["search-latency"],
                breach_id=searching.id,
                key="page",
                state="firing",
                since=opened,
                fired_at=opened,
                burn_rates=page_burns,
                reason=firing.reason,
            )
        )
        session.add_all(
            [
                BreachEventRecord(breach_id=resolved.id, at=RESOLVED[0], event="opened", detail="page"),
                BreachEventRecord(
                    breach_id=resolved.id, at=RESOLVED[0] + 4 * MINUTE, event="acknowledged", actor=RESPONDER
                ),
                BreachEventRecord(breach_id=firing.id, at=opened, event="opened", detail="page"),
                SilenceRecord(
                    slo_id=slo_id,
                    until=RESOLVED[0] + 2 * HOUR,
                    reason=HOSTILE,
                    created_by=SECOND,
                    created_at=RESOLVED[0] + 10 * MINUTE,
                    ended_at=RESOLVED[0] + HOUR,
                    ended_by=SECOND,
                ),
                SubscriptionRecord(
                    service="checkout", channel="C0SEARCH", created_by=SECOND, created_at=START + 2 * DAY
                ),
            ]
        )
        session.commit()
    engine.dispose()


@pytest.fixture
def bot(tmp_path: Path, database_url: str) -> Iterator[BotProcess]:
    """`slo-bot run` in Slack HTTP mode with page links on, over the stored history."""
    store_history(database_url, tmp_path)
    with FakeSlack() as slack:
        slack.add_channel(ALERTS, "alerts", [RESPONDER, SECOND])
        slack.add_channel("C0SEARCH", "search", [SECOND])
        process = BotProcess(tmp_path, database_url, slack, CATALOGUE, env={"SLO_BOT_EVAL_INTERVAL": "1h"})
        process.env.update({"SLO_BOT_LINK_KEY": KEY, "SLO_BOT_PUBLIC_URL": process.url + "/"})
        try:
            yield process.start()
        finally:
            process.close()
            print(process.log())  # shown when the test fails


def _button_url(message: dict[str, Any]) -> str | None:
    for attachment in message.get("attachments", []):
        for block in attachment.get("blocks", []):
            for element in block.get("elements", []):
                if element.get("type") == "button" and element.get("url"):
                    return str(element["url"])
    return None


def _alert_link(bot: BotProcess) -> str:
    """The *View SLO* button's URL in the open breach's message, posted at the bot's start."""
    bot.fake.wait_until(lambda: bot.fake.messages(ALERTS), what="the open breach's message")
    url = _button_url(bot.fake.messages(ALERTS)[0])
    assert url is not None, bot.fake.messages(ALERTS)[0]
    return url


def _tampered(url: str) -> dict[str, str]:
    """Variants of a good link that must each be refused."""
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    exp, sig = int(query["exp"]), query["sig"]
    past = int((NOW - MINUTE).timestamp())
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    base = f"{split.scheme}://{split.netloc}"
    return {
        "no signature": f"{base}{split.path}",
        "expired": f"{base}{split.path}?exp={past}&sig={sign('checkout-availability', past, KEY.encode())}",
        "later expiry": f"{base}{split.path}?exp={exp + 86400}&sig={sig}",
        "changed signature": f"{base}{split.path}?exp={exp}&sig={flipped}",
        "another SLO": f"{base}/slos/search-latency?exp={exp}&sig={sig}",  # one that exists
        "another key": f"{base}{split.path}?exp={exp}&sig={sign('checkout-availability', exp, b'x' * 32)}",
    }


def test_the_signed_link_opens_the_page_and_a_changed_one_is_refused(bot: BotProcess) -> None:
    url = _alert_link(bot)
    assert url.startswith(f"{bot.url}/slos/checkout-availability?exp=")
    exp = int(parse_qs(urlsplit(url).query)["exp"][0])
    assert abs(exp - (datetime.now(UTC) + 7 * DAY).timestamp()) < 120  # good for 7 days

    # an SLO with a dashboard of its own keeps it on its button
    def searching() -> list[dict[str, Any]]:
        return [m for m in bot.fake.messages("C0SEARCH") if "search-latency" in m["text"]]

    bot.fake.wait_until(searching, what="search-latency's breach message")
    assert _button_url(searching()[0]) == DASHBOARD

    page = httpx.get(url, timeout=30)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script
    html = page.text
    assert '<h1 id="slo">checkout-availability</h1>' in html
    # the numbers: the stored history's (burn 2 for 10 of the 30 days, none since)
    for number in ("99.9 % over 30d", "<dd>99.9333 %</dd>", "<dd>33.3 %</dd>", "1h 0.00x", "3d 0.00x"):
        assert number in html, number
    assert re.search(r"<dt>Evaluated</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d UTC</dd>", html)
    # the breaches in the window: the resolved page (a day, acknowledged after 4 min) and the open one
    row = re.sub(r' data-label="[^"]*"', "", html)  # the labels a phone shows before each cell
    assert f"<td>PAGE</td><td>{RESOLVED[0]:%Y-%m-%d %H:%M} UTC</td><td>1 d 0 h</td>\n<td>after 4 min" in row
    # the open page, 20 minutes old when the history was stored: as old as it is when the page is
    # drawn (this module takes its `now` when imported; in a full suite the history then ends half an
    # hour before the bot runs, and the bot rightly opens a NO DATA breach above it)
    opened, seen = NOW - 20 * MINUTE, datetime.now(UTC)
    shown = re.search(
        rf"<td>PAGE</td><td>{opened:%Y-%m-%d %H:%M} UTC</td><td>still open \(([^)]*) so far\)</td>\n"
        r"<td>not acknowledged",
        row,
    )
    assert shown is not None, row
    assert shown.group(1) in {span(seen - opened - back) for back in (timedelta(0), MINUTE)}, shown.group(1)
    # the audit trail: who acknowledged, silenced, subscribed; a typed reason shown, never run
    assert f"<td>{RESPONDER}</td><td>acknowledged breach #" in row
    assert "subscribed C0SEARCH to checkout" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script" not in html
    assert '<img class="chart" id="chart" src="data:image/png;base64,' in html

    for what, bad in _tampered(url).items():
        refused = httpx.get(bad, timeout=30)
        assert refused.status_code == 403, what
        assert "Link refused" in refused.text and "checkout" not in refused.text, what
    # an SLO that does not exist, with a good signature for its name: 404, nothing else told
    exp = int((datetime.now(UTC) + DAY).timestamp())
    gone = httpx.get(f"{bot.url}/slos/no-such-slo?exp={exp}&sig={sign('no-such-slo', exp, KEY.encode())}")
    assert gone.status_code == 404 and "No such SLO" in gone.text

    # /slo show carries the same kind of link
    answer = bot.answer("show checkout-availability")
    text = json.dumps(answer)
    assert f"{bot.url}/slos/checkout-availability?exp=" in text and "SLO page" in text


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:  # fail, not skip: `make test-deps` installs it, so a missing one must be seen
        pytest.fail(
            "chromium is not installed: run `make test-deps` (Debian's chromium package)", pytrace=False
        )
    return found


def _screenshot(url: str, tmp_path: Path, name: str) -> Image.Image:
    out = tmp_path / f"{name}.png"
    profile = tmp_path / f"chromium-{name}"
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1000,1400",
            "--hide-scrollbars",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Image.open(out).convert("RGB")


def _pixels_near(image: Image.Image, colour: str, tolerance: int = 30) -> list[tuple[int, int]]:
    r, g, b = int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    width, height = image.size
    data = image.load()
    assert data is not None
    return [
        (x, y)
        for y in range(0, height, 2)
        for x in range(0, width, 2)
        if all(abs(a - c) <= tolerance for a, c in zip(data[x, y][:3], (r, g, b), strict=True))  # type: ignore[index]
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_chromium_draws_the_chart_and_not_for_a_refused_link(bot: BotProcess, tmp_path: Path) -> None:
    url = _alert_link(bot)
    page = _screenshot(url, tmp_path, "page")
    assert page.size == (1000, 1400)
    # the budget line's blue and the page breach band's vermillion, in one region of the width of
    # the page's column: the <img> drawn, below the numbers
    blue = _pixels_near(page, charts.BUDGET_COLOUR)
    assert len(blue) > 300, len(blue)
    xs, ys = [x for x, _ in blue], [y for _, y in blue]
    assert max(xs) - min(xs) > 500 and 150 < min(ys) < max(ys) < 1400
    assert _pixels_near(page, charts.VERMILLION, 20), "no breach band or burn line"

    refused = _screenshot(_tampered(url)["changed signature"], tmp_path, "refused")
    assert _pixels_near(refused, charts.BUDGET_COLOUR) == []
    assert _pixels_near(refused, charts.VERMILLION, 20) == []
