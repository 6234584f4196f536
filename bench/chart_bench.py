"""Burn-down charts of a 30-day SLO from stored history: milliseconds per chart, peak RSS.

Run from the repository root:  .venv/bin/python bench/chart_bench.py [--charts 20]

It stores 30 days of an SLO's history the way `slo-bot check` does (the built-in simulated source
with an outage, into a fresh SQLite database in a temp dir: minute, 5-minute and hourly buckets by
age), then, in this one process:
- the baseline: the chart's data read from the store and assembled (`bot.burndown.load_burn_down`)
  `--charts` times, nothing drawn; the peak RSS after it;
- the first chart (it loads matplotlib), then `--charts` charts, each read and drawn to PNG bytes
  (`bot.charts.render`); the peak RSS after them.
Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from sqlmodel import Session  # noqa: E402

from bot import cli  # noqa: E402
from bot.burndown import load_burn_down  # noqa: E402
from bot.catalogue.stored import slo_of  # noqa: E402
from bot.store import db, repo  # noqa: E402

CATALOGUE = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: sim}}
spec:
  type: Simulated
  connectionDetails:
    seed: 3
    requests_per_minute: 1000
    error_ratio: 0.0003
    incidents: [{{start: "{outage}", duration: 40m, error_ratio: 0.5}}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: checkout-availability}}
spec:
  service: checkout
  indicator:
    metadata: {{name: checkout-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts", type=int, default=20, help="charts drawn (and baseline reads)")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory(prefix="slo-bot-chart-bench-") as folder:
        path = Path(folder) / "slos.yaml"
        path.write_text(CATALOGUE.format(outage=(now - timedelta(days=9)).isoformat()))
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        os.environ["DATABASE_URL"] = url
        started = time.perf_counter()
        with redirect_stdout(io.StringIO()):
            assert cli.main(["apply", str(path)]) == 0
            assert cli.main(["check", "--at", now.isoformat()]) in (0, 1)
        stored_s = time.perf_counter() - started
        engine = db.make_engine(url)
        with Session(engine) as session:
            record = repo.get_slo(session=session, name="checkout-availability")
            assert record is not None and record.id is not None
            slo, slo_id = slo_of(record), record.id
        gc.collect()  # as `slo-bot run` does once it is loaded (bot/service.py)
        gc.freeze()
        before = peak_rss_mb()

        def data() -> object:
            with Session(engine) as session:
                return load_burn_down(session, slo, slo_id, now)

        reads = []
        for _ in range(args.charts):
            t = time.perf_counter()
            data()
            reads.append(time.perf_counter() - t)
        baseline_rss = peak_rss_mb()

        t = time.perf_counter()
        from bot import charts

        first = charts.render(data())  # type: ignore[arg-type]
        first_s = time.perf_counter() - t
        drawn = []
        for _ in range(args.charts):
            t = time.perf_counter()
            chart = charts.render(data())  # type: ignore[arg-type]
            drawn.append(time.perf_counter() - t)
        charts_rss = peak_rss_mb()
        engine.dispose()

    load = os.getloadavg()[0]
    print(f"30-day SLO, 99.9 %, stored by `check` in {stored_s:.1f} s; {args.charts} charts; load {load:.1f}")
    print(f"  baseline, data read and assembled: {statistics.median(reads) * 1000:7.1f} ms median")
    print(
        f"  chart, read + drawn to PNG:        {statistics.median(drawn) * 1000:7.1f} ms median, "
        f"{max(drawn) * 1000:.1f} ms worst"
    )
    print(f"  first chart (loads matplotlib):    {first_s * 1000:7.1f} ms")
    print(
        f"  PNG: {len(chart.png) / 1024:.0f} KiB, alt text {len(chart.alt_text)} characters "
        f"(first {len(first.png) / 1024:.0f} KiB)"
    )
    grown = charts_rss - baseline_rss
    print(
        f"  peak RSS: {before:.0f} MB before, {baseline_rss:.0f} MB after the baseline, "
        f"{charts_rss:.0f} MB after the charts (+{grown:.0f} MB for matplotlib and drawing)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
