"""Grouped SLOs (`slo-bot/group-by: route`) against a real Prometheus holding a shop's history per route.

Each route's true counts are known to the event; one definition becomes one member SLO per route,
and the source gets one query per definition and range, however many members there are.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot import cli, jobs
from bot.sources.pool import SourcePool
from bot.store import breaches as breach_store
from bot.store import db, repo
from tests.countingproxy import CountingProxy
from tests.promharness import PrometheusServer, tools_problem

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
WINDOW = DAY  # the SLOs' window
OBJECTIVE = 0.99


@dataclass(frozen=True)
class Route:
    """Events a minute from `since` on: `total`, of which `bad` every `bad_every` minutes."""

    total: int
    bad: int
    bad_every: int = 1
    since: timedelta = timedelta(0)  # after the history's start

    def counts(self, start: datetime, a: datetime, b: datetime) -> tuple[int, int]:
        """(good, total) in [a, b)."""
        good = total = 0
        first = start + self.since
        minute = max(a, first)
        while minute < b:
            index = int((minute - first) / MINUTE)
            bad = self.bad if index % self.bad_every == 0 else 0
            total += self.total
            good += self.total - bad
            minute += MINUTE
        return good, total


# on the hour, so a day's window starts on the boundary of its hour buckets: every count is exact
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = END - WINDOW - 2 * timedelta(hours=1)  # the window and a little: the 3-day burn rule has no data
ROUTES = {
    "/pay": Route(50, 1),  # 2 % errors: the budget of 1 % is spent twice over
    "/cart": Route(30, 1, bad_every=10),  # 1 error in 300: a third of the budget
    "/search": Route(20, 0),
    "/new": Route(10, 5, since=END - 10 * MINUTE - START),  # shows 10 minutes before the end, failing half
}


def _openmetrics() -> str:
    lines = ["# HELP shop_requests Requests served.", "# TYPE shop_requests counter"]
    for route, shape in ROUTES.items():
        for code in ("200", "500"):
            t = START + shape.since
            while t <= END:
                good, total = shape.counts(START, START, t)
                value = good if code == "200" else total - good
                labels = f'job="shop",route="{route}",code="{code}"'
                lines.append(f"shop_requests_total{{{labels}}} {value} {int(t.timestamp())}")
                t += MINUTE
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def shop_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    problem = tools_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    root = tmp_path_factory.mktemp("shop")
    source = root / "shop.om"
    source.write_text(_openmetrics())
    data = root / "data"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    with PrometheusServer(data) as server:
        yield server.url


CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec:
  type: Prometheus
  connectionDetails: {url: "${PROMETHEUS_URL}"}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout
  annotations: {slo-bot/group-by: route}
spec:
  service: shop
  indicator:
    metadata: {name: shop-good}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'shop_requests_total{job="shop",code!~"5.."}'}
        total:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'shop_requests_total{job="shop"}'}
  timeWindow: [{duration: 1d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-windowed
  annotations: {slo-bot/group-by: route}
spec:
  service: shop
  indicator:
    metadata: {name: shop-bad}
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'sum(increase(shop_requests_total{job="shop",code=~"5.."}[{{window}}]))'}
        total:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'sum(increase(shop_requests_total{job="shop"}[{{window}}]))'}
  timeWindow: [{duration: 1d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: pay-only
spec:
  service: shop
  indicator:
    metadata: {name: pay-good}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'shop_requests_total{job="shop",route="/pay",code!~"5.."}'}
        total:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'shop_requests_total{job="shop",route="/pay"}'}
  timeWindow: [{duration: 1d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""


@pytest.fixture
def proxy(shop_prometheus: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingProxy]:
    counting = CountingProxy(shop_prometheus)
    monkeypatch.setenv("PROMETHEUS_URL", counting.url)
    yield counting
    counting.close()


@pytest.fixture
def applied(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, proxy: CountingProxy) -> Path:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SLO_BOT_CONFIG", raising=False)
    path = tmp_path / "shop.yaml"
    path.write_text(CATALOGUE)
    assert cli.main(["validate", str(path)]) == 0
    assert cli.main(["apply", str(path)]) == 0
    return path


def _evaluate(engine: Engine, now: datetime, *names: str) -> dict[str, jobs.Outcome]:
    sources = SourcePool(max_connections=4)
    try:
        outcomes = jobs.evaluate_all(
            engine, now=now, sources=sources, concurrency=4, names=list(names) or None
        )
    finally:
        sources.close()
    for outcome in outcomes:
        assert outcome.error is None, f"{outcome.name}: {outcome.error}"
    return {o.name: o for o in outcomes}


def _assert_true_counts(outcome: jobs.Outcome, route: str, at: datetime) -> None:
    good, total = ROUTES[route].counts(START, at - WINDOW, at)
    assert outcome.status is not None
    assert outcome.status.total == pytest.approx(total, abs=1e-6), outcome.name
    assert outcome.status.good == pytest.approx(good, abs=1e-6), outcome.name
    consumed = (1 - good / total) / (1 - OBJECTIVE)
    assert outcome.status.remaining_ratio == pytest.approx(1 - consumed, abs=1e-9), outcome.name


def test_each_route_is_a_member_with_its_own_true_budget_and_new_routes_join(
    applied: Path, engine: Engine, proxy: CountingProxy
) -> None:
    first = END - timedelta(hours=1)
    outcomes = _evaluate(engine, first)
    for definition in ("checkout", "checkout-windowed"):
        members = sorted(n for n in outcomes if n.startswith(definition + "["))
        assert members == [f"{definition}[/cart]", f"{definition}[/pay]", f"{definition}[/search]"]
        for route in ("/pay", "/cart", "/search"):
            _assert_true_counts(outcomes[f"{definition}[{route}]"], route, first)
    assert outcomes["checkout[/pay]"].status.remaining_ratio == pytest.approx(-1.0, abs=1e-6)  # type: ignore[union-attr]
    assert "checkout" not in outcomes  # the definition is no SLO of its own

    # the next tick: /new has shown up in the data meanwhile and is a member from this tick on
    proxy.count = 0
    grouped = _evaluate(engine, END, "checkout")
    group_queries = proxy.count
    proxy.count = 0
    single = _evaluate(engine, END, "pay-only")
    assert len(grouped) == 4 and len(single) == 1
    assert group_queries == proxy.count  # four members cost what one SLO of its own costs
    outcomes = {**grouped, **_evaluate(engine, END, "checkout-windowed")}
    for definition in ("checkout", "checkout-windowed"):
        for route in ROUTES:
            _assert_true_counts(outcomes[f"{definition}[{route}]"], route, END)
    new = outcomes["checkout[/new]"]
    assert new.status is not None and new.status.total == 100 and new.status.good == 50
    assert [a["severity"] for a in new.alerts] == ["page"]  # half its requests fail: its own breach
    with Session(engine) as session:
        record = repo.get_slo(session=session, name="checkout[/new]")
        assert record is not None and record.id is not None
        assert {b.slo_id for b in breach_store.open_breaches(session=session, slo_id=record.id)} == {
            record.id
        }
        assert repo.get_slo(session=session, name="checkout[/search]") is not None
        assert not breach_store.open_breaches(
            session=session,
            slo_id=repo.get_slo(session=session, name="checkout[/search]").id or 0,  # type: ignore[union-attr]
        )


def test_members_retire_after_a_window_without_data_unless_a_breach_is_open(
    applied: Path, engine: Engine
) -> None:
    _evaluate(engine, END)
    with Session(engine) as session:
        open_before = {
            r.name
            for r in repo.list_slos(session=session, members=True)
            if r.group_id and breach_store.open_breaches(session=session, slo_id=r.id or 0)
        }
    assert "checkout[/pay]" in open_before and "checkout[/search]" not in open_before
    # no data since END (the fake clock runs on): still members just short of the quiet period
    names = set(_evaluate(engine, END + WINDOW - 2 * MINUTE, "checkout"))
    assert "checkout[/search]" in names
    after = END + WINDOW + 2 * MINUTE
    _evaluate(engine, after, "checkout")
    with Session(engine) as session:
        members = {r.name for r in repo.list_slos(session=session, members=True) if r.group_id}
        still_open = {
            r.name
            for r in repo.list_slos(session=session, members=True)
            if r.group_id and breach_store.open_breaches(session=session, slo_id=r.id or 0)
        }
    checkout = {m for m in members if m.startswith("checkout[")}
    assert "checkout[/search]" not in checkout
    assert "checkout[/pay]" in checkout
    # only members whose breach is still open stay
    assert checkout == {m for m in still_open if m.startswith("checkout[")}


def test_status_folds_a_group_into_one_line_and_shows_a_member_by_name(
    applied: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    _evaluate(engine, END)
    capsys.readouterr()
    assert cli.main(["status"]) == 0
    table = capsys.readouterr().out
    lines = [line for line in table.splitlines() if line.startswith("checkout ")]
    assert len(lines) == 1, table
    assert "checkout (4 routes: worst /new -4900 % left, /pay -100 % left)" in lines[0]
    assert "checkout[" not in table
    assert cli.main(["status", "checkout[/cart]"]) == 0
    only = capsys.readouterr().out
    assert "checkout[/cart]" in only and "checkout[/pay]" not in only
    assert cli.main(["status", "checkout", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["slo"] for r in rows) == [f"checkout[{r}]" for r in sorted(ROUTES)]


class LiveRoutes:
    """A live shop for Prometheus to scrape: each route's counter grows by LIVE_RATE a second from
    the moment the route opens."""

    def __init__(self) -> None:
        self.opened: dict[str, float] = {}
        routes = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                now = time.time()
                lines = ["# TYPE shop_requests_total counter"]
                for route, since in list(routes.opened.items()):
                    lines.append(
                        f'shop_requests_total{{route="{route}",code="200"}} {LIVE_RATE * (now - since):.3f}'
                    )
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


LIVE_RATE = 10.0  # requests a second per route
SCRAPE_S = 5


def _wait_past_next_minute(after: float) -> datetime:
    """Sleep until a scrape has landed past the first minute boundary after `after`; that boundary."""
    boundary = (after // 60 + 1) * 60
    time.sleep(max(0.0, boundary + SCRAPE_S + 2 - time.time()))
    return datetime.fromtimestamp(boundary, UTC)


def test_a_route_a_live_target_starts_serving_becomes_a_member_on_the_next_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = tools_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    shop = LiveRoutes()
    config = f"""
global: {{scrape_interval: {SCRAPE_S}s}}
scrape_configs:
  - job_name: shop
    scrape_interval: {SCRAPE_S}s
    static_configs: [{{targets: ["{shop.target}"]}}]
    metric_relabel_configs: [{{action: labeldrop, regex: instance}}]
"""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("SLO_BOT_CONFIG", raising=False)
    with PrometheusServer(tmp_path / "data", config=config) as prometheus:
        shop.opened["/a"] = time.time()
        monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
        path = tmp_path / "shop.yaml"
        path.write_text(CATALOGUE)
        assert cli.main(["apply", str(path)]) == 0
        engine = db.make_engine(url)
        try:
            first = _wait_past_next_minute(time.time() + 2 * SCRAPE_S)
            ticked = _evaluate(engine, datetime.now(UTC), "checkout")
            assert sorted(ticked) == ["checkout[/a]"]
            shop.opened["/b"] = time.time()  # after the first tick's newest minute ended
            second = _wait_past_next_minute(time.time() + 2 * SCRAPE_S)
            ticked = _evaluate(engine, datetime.now(UTC), "checkout")
            scraped = {route: _scraped(prometheus.url, route, second) for route in ("/a", "/b")}
        finally:
            engine.dispose()
            shop.close()
    assert sorted(ticked) == ["checkout[/a]", "checkout[/b]"]
    for route in ("/a", "/b"):
        status = ticked[f"checkout[{route}]"].status
        assert status is not None and status.good == status.total
        # the truth is what Prometheus scraped: from the route's first sample (its value there is no
        # increase) to its last one before the tick's newest whole minute ended
        samples = scraped[route]
        assert status.total == pytest.approx(samples[-1] - samples[0], abs=0.01), (route, samples)
        # and that is most of what the route served (a loaded machine may miss a scrape or two)
        served = LIVE_RATE * (second.timestamp() - shop.opened[route])
        assert served - LIVE_RATE * (4 * SCRAPE_S + 2) <= status.total <= served + 1, (route, served)
    assert first < second


def _scraped(url: str, route: str, until: datetime) -> list[float]:
    """The route's counter samples Prometheus holds up to `until`, oldest first."""
    import httpx

    query = f'shop_requests_total{{route="{route}"}}[10m]'
    body = httpx.get(f"{url}/api/v1/query", params={"query": query, "time": until.timestamp()}).json()
    (series,) = body["data"]["result"]
    return [float(value) for t, value in series["values"] if float(t) <= until.timestamp()]


def test_a_tick_that_began_before_another_stored_the_groups_new_members_does_not_add_them_again(
    applied: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas: one still stores a group's first tick (adding its members) while another's next
    tick, which read the members before they were added, takes the group: it finds them stored."""
    from bot.store import groups as group_store

    _evaluate(engine, END - timedelta(hours=1), "checkout")  # adds the three members
    read = group_store.member_names
    begun = [False]

    def as_the_tick_began(*, session: Session, group_ids: Any) -> dict[int, list[str]]:
        found = read(session=session, group_ids=group_ids)
        if not begun[0]:  # the tick's first read: before the other replica's members were stored
            begun[0] = True
            return {group_id: [] for group_id in found}
        return found

    monkeypatch.setattr(group_store, "member_names", as_the_tick_began)
    outcomes = _evaluate(engine, END, "checkout")  # every outcome without an error
    assert sorted(outcomes) == ["checkout[/cart]", "checkout[/new]", "checkout[/pay]", "checkout[/search]"]


def test_a_steady_tick_of_a_group_writes_its_members_newest_data_in_one_statement(
    applied: Path, engine: Engine
) -> None:
    """Each member keeps when its label value last had data (how quiet members retire): a tick
    writes it for all the group's members together, not one statement a member."""
    from sqlalchemy import event

    first = END - timedelta(hours=1)
    _evaluate(engine, first, "checkout")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    _evaluate(engine, first + MINUTE, "checkout")
    writes = [s for s in statements if s.lstrip().upper().startswith("UPDATE") and "last_data_at" in s]
    assert len(writes) == 1, writes
    with Session(engine) as session:
        seen = {
            r.name: repo.utc(r.last_data_at)
            for r in repo.list_slos(session=session, members=True)
            if r.name.startswith("checkout[")
        }
    assert seen == {f"checkout[{route}]": first + MINUTE for route in ("/cart", "/pay", "/search")}


def test_after_its_first_cycle_a_group_asks_only_for_its_newest_minutes(
    applied: Path, engine: Engine, proxy: CountingProxy
) -> None:
    """The definition's coverage moves on once its members are stored: a steady tick asks its
    source what one new minute needs, never the whole window again."""
    first = END - timedelta(hours=1)
    proxy.count = 0
    _evaluate(engine, first, "checkout")
    backfill = proxy.count
    proxy.count = 0
    outcomes = _evaluate(engine, first + MINUTE, "checkout")
    assert proxy.count == 2, (backfill, proxy.count)  # good and total, once each
    assert backfill > proxy.count
    _assert_true_counts(outcomes["checkout[/pay]"], "/pay", first + MINUTE)
    with Session(engine) as session:
        record = repo.get_slo(session=session, name="checkout")
        assert record is not None
        assert repo.utc(record.covered_to) == first + MINUTE
