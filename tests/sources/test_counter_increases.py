"""Counter selectors read as raw samples: exact per-step events at any scrape interval and offset.

A MockTransport plays Prometheus's `/api/v1/query` for `selector[Ns]` with either range semantics:
Prometheus 2 includes a sample exactly at the range start, Prometheus 3 does not.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from bot.domain import DataSource, MetricQuery
from bot.sources.prometheus import PrometheusSource

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RATE = 10.0  # events per second
Series = dict[str, list[tuple[float, float]]]  # code -> (unix seconds, counter value)
SELECTOR = 'http_requests_total{job="api"}'


def scrape(interval: float, offset: float, *, hours: float = 2, resets: tuple[float, ...] = ()) -> Series:
    """Samples of a counter growing at RATE, scraped every `interval` s at `offset` past the minute.

    A reset at time r restarts the counter from 0 at r (the sample after r holds what came since).
    """
    start = T0.timestamp() - 4 * 3600 + offset
    samples = []
    base, restarted = 5_000.0, start - 3600
    t = start
    while t <= T0.timestamp() + hours * 3600:
        for r in resets:
            if restarted < r <= t:
                base, restarted = -RATE * (r - start), r
        samples.append((t, base + RATE * (t - start)))
        t += interval
    return {"200": samples}


def prometheus(
    series: Series, *, left_open: bool
) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """Raw samples for `selector[Ns]`, the newest sample within 5 minutes at each step of a range
    query of the selector, and `resets(selector[Ns])`, as Prometheus 2 or 3 computes them."""
    asked: list[str] = []

    def window(samples: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
        return [(t, v) for t, v in samples if (lo < t if left_open else lo <= t) and t <= hi]

    def handle(request: httpx.Request) -> httpx.Response:
        p = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        query = p["query"]
        asked.append(query)
        result = []
        if request.url.path == "/api/v1/query":
            selector, _, span = query.rpartition("[")
            assert selector == SELECTOR
            hi = float(p["time"])
            lo = hi - float(span.rstrip("s]"))
            for code, samples in series.items():
                values = [[t, repr(v)] for t, v in window(samples, lo, hi)]
                result.append({"metric": {"__name__": "http_requests_total", "code": code}, "values": values})
        else:
            assert request.url.path == "/api/v1/query_range"
            steps = range(int(p["start"]), int(p["end"]) + 1, int(p["step"]))
            for code, samples in series.items():
                values = []
                for t in steps:
                    if query == SELECTOR:  # the newest sample in the 5-minute lookback
                        recent = window(samples, t - 300, t)
                        if recent:
                            values.append([t, repr(recent[-1][1])])
                    else:
                        assert query.startswith(f"resets({SELECTOR}[")
                        span = float(query.rpartition("[")[2].rstrip("s])"))
                        inside = window(samples, t - span, t)
                        if inside:
                            drops = sum(1 for (_, a), (_, b) in itertools.pairwise(inside) if b < a)
                            values.append([t, str(drops)])
                result.append({"metric": {"code": code}, "values": values})
        result = [r for r in result if r["values"]]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
        )

    return handle, asked


def fetch(
    series: Series, *, left_open: bool, start: datetime, end: datetime, step: timedelta = MINUTE
) -> dict[datetime, float]:
    handle, _ = prometheus(series, left_open=left_open)
    datasource = DataSource(name="prom", type="Prometheus", connection={"url": "http://prom:9090"})
    with httpx.Client(transport=httpx.MockTransport(handle), base_url="http://prom:9090") as client:
        source = PrometheusSource(datasource, client)
        return source.fetch_range(
            MetricQuery(datasource, SELECTOR),
            counter=True,
            start=start,
            end=end,
            step=step,
        )


@pytest.mark.parametrize("left_open", [False, True], ids=["prometheus2", "prometheus3"])
@pytest.mark.parametrize(
    ("interval", "offset"), [(15, 0), (15, 7.3), (60, 0), (60, 17), (60, 59.9), (120, 43), (300, 11)]
)
def test_every_minute_holds_its_events_at_any_scrape_interval(
    left_open: bool, interval: float, offset: float
) -> None:
    values = fetch(scrape(interval, offset), left_open=left_open, start=T0, end=T0 + 30 * MINUTE)
    # every minute is data; a minute holding a sample holds the events since the sample before
    assert sorted(values) == [T0 + (i + 1) * MINUTE for i in range(30)]
    for at, events in values.items():
        expected = {RATE * 60} if interval <= 60 else {0.0, RATE * interval}
        assert any(events == pytest.approx(e) for e in expected), at
    assert sum(values.values()) == pytest.approx(RATE * 30 * 60)


@pytest.mark.parametrize("left_open", [False, True], ids=["prometheus2", "prometheus3"])
@pytest.mark.parametrize("step", [timedelta(minutes=5), timedelta(hours=1)])
@pytest.mark.parametrize(("interval", "offset"), [(15, 7.3), (60, 17), (120, 43), (300, 11)])
def test_coarse_steps_are_the_sums_of_the_minutes(
    left_open: bool, step: timedelta, interval: float, offset: float
) -> None:
    """Coarse steps read the counters at step ends (one point a step), minutes read raw samples:
    every step is exactly the sum of its minutes, so tiers of any resolution agree."""
    series = scrape(interval, offset)
    start, end = T0 - 3 * step, T0 + step
    coarse = fetch(series, left_open=left_open, start=start, end=end, step=step)
    fine = fetch(series, left_open=left_open, start=start, end=end)
    assert len(coarse) == 4
    for at, events in coarse.items():
        minutes = sum(v for t, v in fine.items() if at - step < t <= at)
        assert events == pytest.approx(minutes), at
    assert sum(coarse.values()) == pytest.approx(RATE * 4 * step.total_seconds())


@pytest.mark.parametrize("step", [MINUTE, timedelta(minutes=5), timedelta(hours=1)])
def test_a_counter_reset_loses_nothing(step: timedelta) -> None:
    reset = T0.timestamp() + 10 * 60 + 30  # between two scrapes at :17 (12:10:17 and 12:11:17)
    series = scrape(60, 17, resets=(reset,))
    handle, asked = prometheus(series, left_open=True)
    datasource = DataSource(name="prom", type="Prometheus", connection={"url": "http://prom:9090"})
    with httpx.Client(transport=httpx.MockTransport(handle), base_url="http://prom:9090") as client:
        values = PrometheusSource(datasource, client).fetch_range(
            MetricQuery(datasource, SELECTOR), counter=True, start=T0, end=T0 + timedelta(hours=1), step=step
        )
    # Prometheus's own rule: after a drop the new value is the increase, so only the events between
    # the last scrape before the restart and the restart itself are unknowable (13 s here)
    assert sum(values.values()) == pytest.approx(RATE * (3600 - (reset - (T0.timestamp() + 617))))
    assert all(v >= 0 for v in values.values())
    if step > MINUTE:  # the restart's step was read raw again
        assert any(q.startswith(SELECTOR + "[") for q in asked)


def test_scrape_gaps_longer_than_five_minutes_are_no_data() -> None:
    series = scrape(60, 17)
    gap = (T0.timestamp() + 600, T0.timestamp() + 1500)
    series["200"] = [(t, v) for t, v in series["200"] if not gap[0] <= t < gap[1]]
    values = fetch(series, left_open=True, start=T0, end=T0 + 30 * MINUTE)
    missing = {T0 + (i + 1) * MINUTE for i in range(30)} - set(values)
    # samples at :17 until 12:09:17 and again from 12:25:17: the 15 minutes between are no data; the
    # minute to 12:26 was measured from 12:25:17 on, but its only sample follows the gap: no events
    assert missing == {T0 + (i + 1) * MINUTE for i in range(10, 25)}
    assert values.pop(T0 + 26 * MINUTE) == 0.0
    assert all(v == pytest.approx(RATE * 60) for v in values.values())


@pytest.mark.parametrize("left_open", [False, True], ids=["prometheus2", "prometheus3"])
@pytest.mark.parametrize("step", [timedelta(minutes=5), timedelta(hours=1)])
def test_coarse_steps_cut_by_a_scrape_gap_are_the_sums_of_the_minutes(
    left_open: bool, step: timedelta
) -> None:
    """A gap from 12:49:17 to 13:05:17 (off every step's grid): the steps it cuts have a counter value
    at one end only, and the samples inside them still count, as they do minute by minute."""
    series = scrape(60, 17)
    gap = (T0.timestamp() + 50 * 60, T0.timestamp() + 65 * 60)
    series["200"] = [(t, v) for t, v in series["200"] if not gap[0] <= t < gap[1]]
    start, end = T0 - step, T0 + timedelta(hours=2)
    coarse = fetch(series, left_open=left_open, start=start, end=end, step=step)
    fine = fetch(series, left_open=left_open, start=start, end=end)
    sums: dict[datetime, float] = {}
    for t, v in fine.items():  # the minutes of each step, by the step's end
        at = start + math.ceil((t - start) / step) * step
        sums[at] = sums.get(at, 0.0) + v
    assert coarse == pytest.approx(sums)
    # the 16 minutes between the samples on either side of the gap are no data at any step
    assert sum(fine.values()) == pytest.approx(RATE * ((end - start).total_seconds() - 16 * 60))


def test_series_are_summed_and_long_ranges_are_split() -> None:
    series = scrape(15, 3, hours=30)
    series["500"] = [(t, v / 10) for t, v in series["200"]]
    handle, asked = prometheus(series, left_open=True)
    datasource = DataSource(name="prom", type="Prometheus", connection={"url": "http://prom:9090"})
    with httpx.Client(transport=httpx.MockTransport(handle), base_url="http://prom:9090") as client:
        values = PrometheusSource(datasource, client).fetch_range(
            MetricQuery(datasource, SELECTOR),
            counter=True,
            start=T0,
            end=T0 + timedelta(hours=28),
            step=MINUTE,
        )
    assert len(asked) > 1
    assert len(values) == 28 * 60
    assert all(v == pytest.approx(RATE * 60 * 1.1) for v in values.values())


def test_raw_samples_answered_out_of_order_or_twice_count_as_in_order() -> None:
    """Prometheus answers each series' samples in time order, each time once; a proxy or another
    implementation of its API may not. The events per minute are the same either way."""
    series = scrape(15, 7.3)
    in_order = fetch(series, left_open=False, start=T0, end=T0 + 30 * MINUTE)
    samples = series["200"]
    shuffled = samples[::-1] + samples[::3]  # newest first, then a third of them again
    assert sorted(shuffled) != shuffled
    values = fetch({"200": shuffled}, left_open=False, start=T0, end=T0 + 30 * MINUTE)
    assert values == in_order
    assert sum(values.values()) == pytest.approx(RATE * 30 * 60)
