"""A grouped SLO against the same SLOs written one per route: source queries and seconds per cycle.

Run from the repository root:  .venv/bin/python bench/groups_bench.py [--routes 100] [--cycles 3]

It backfills 26 hours of per-minute counters for N routes into a local Prometheus (promtool), puts a
counting proxy in front of it, and evaluates, each in a fresh SQLite database: one definition with
`slo-bot/group-by: route` (N members), and N SLOs of their own (one route each). Each runs a first
cycle (the backfill of the 1-day window) and `--cycles` steady ones a minute apart, in-process
(`bot.jobs.evaluate_all`). Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bot import cli, jobs  # noqa: E402
from bot.sources.pool import SourcePool  # noqa: E402
from bot.store import db  # noqa: E402
from tests.countingproxy import CountingProxy  # noqa: E402
from tests.promharness import PrometheusServer  # noqa: E402

MINUTE = timedelta(minutes=1)
HEAD = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: "URL"}}
"""
SLO = """---
apiVersion: openslo/v1
kind: SLO
metadata: {name: NAME, annotations: ANNOTATIONS}
spec:
  service: shop
  indicator:
    metadata: {name: NAME-sli}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'shop_requests_total{job="shop",GOODcode!~"5.."}'}
        total:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'shop_requests_total{job="shop"TOTAL}'}
  timeWindow: [{duration: 1d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""


def history(directory: Path, routes: int, end: datetime) -> Path:
    """Written a series at a time: the peak RSS printed at the end is slo-bot's, not this generator's."""
    start = end - timedelta(hours=26)
    minutes = int((end - start) / MINUTE)
    source = directory / "shop.om"
    with source.open("w") as out:
        out.write("# HELP shop_requests Requests served.\n# TYPE shop_requests counter\n")
        for r in range(routes):
            for code, per_minute in (("200", 10 + r % 7), ("500", 1 if r % 5 == 0 else 0)):
                labels = f'job="shop",route="/r{r}",code="{code}"'
                base = int(start.timestamp())
                out.writelines(
                    f"shop_requests_total{{{labels}}} {k * per_minute} {base + 60 * k}\n"
                    for k in range(minutes + 1)
                )
        out.write("# EOF\n")
    data = directory / "data"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    source.unlink()
    return data


def catalogue(url: str, routes: int, grouped: bool) -> str:
    head = HEAD.replace("URL", url)
    if grouped:
        text = SLO.replace("NAME", "shop").replace("ANNOTATIONS", "{slo-bot/group-by: route}")
        return head + text.replace("GOOD", "").replace("TOTAL", "")
    return head + "".join(
        SLO.replace("NAME", f"shop-r{r}")
        .replace("ANNOTATIONS", "{}")
        .replace("GOOD", f'route="/r{r}",')
        .replace("TOTAL", f',route="/r{r}"')
        for r in range(routes)
    )


def run(
    work: Path, proxy: CountingProxy, routes: int, grouped: bool, end: datetime, cycles: int
) -> dict[str, object]:
    label = "grouped" if grouped else "one per route"
    path = work / f"{label.replace(' ', '-')}.yaml"
    path.write_text(catalogue(proxy.url, routes, grouped))
    url = f"sqlite:///{work / (path.stem + '.db')}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    os.environ["DATABASE_URL"] = url
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):  # a line per SLO created
        assert cli.main(["apply", str(path)]) == 0
    figures: dict[str, object] = {"setup": label}
    sources = SourcePool(max_connections=16)
    try:
        at = end - timedelta(minutes=cycles + 5)
        proxy.count = 0
        started = time.monotonic()
        outcomes = jobs.evaluate_all(engine, now=at, sources=sources, concurrency=16)
        figures["first cycle"] = (
            f"{time.monotonic() - started:.2f} s, {proxy.count} queries, {len(outcomes)} SLOs"
        )
        seconds, queries = [], []
        for i in range(cycles):
            proxy.count = 0
            started = time.monotonic()
            jobs.evaluate_all(engine, now=at + (i + 1) * MINUTE, sources=sources, concurrency=16)
            seconds.append(time.monotonic() - started)
            queries.append(proxy.count)
        figures["steady cycle"] = (
            f"{statistics.median(seconds):.2f} s, {statistics.median(queries):.0f} queries"
        )
        assert all(o.error is None for o in outcomes), [o.error for o in outcomes if o.error][:3]
    finally:
        sources.close()
        engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--grouped-only", action="store_true", help="skip the SLOs one per route")
    args = parser.parse_args()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    work = Path(tempfile.mkdtemp(prefix="slo-bot-groups-bench-"))
    try:
        started = time.monotonic()
        data = history(work, args.routes, end)
        print(f"{args.routes} routes backfilled in {time.monotonic() - started:.1f} s", file=sys.stderr)
        with PrometheusServer(data) as server:
            proxy = CountingProxy(server.url)
            try:
                for grouped in (True,) if args.grouped_only else (True, False):
                    print(run(work, proxy, args.routes, grouped, end, args.cycles))
            finally:
                proxy.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
