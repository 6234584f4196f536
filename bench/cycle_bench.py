"""Scheduler cycles of many SLOs against a real local Prometheus: seconds per cycle, peak RSS.

Run from the repository root:  .venv/bin/python bench/cycle_bench.py [--slos 1000] [--cycles 5]

It generates 31 days of history (tests/promharness.py), starts a Prometheus on it (127.0.0.1),
applies N SLOs to a fresh SQLite database in a temp dir, then runs the scheduler's tick
(`bot.runner.Runner.tick` with the Slack and incident hooks, what `slo-bot run` does every interval)
once to backfill and then `--cycles` more times, one simulated minute apart. The baseline, measured
in the same run, is the same cycle's source queries alone: `bot.evaluation.fetch` for every SLO at
the same concurrency, nothing stored. Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import io
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import check_bench  # noqa: E402  (the catalogue generator)
from sqlmodel import Session  # noqa: E402

from bot import cli, evaluation  # noqa: E402
from bot.catalogue.stored import slo_of  # noqa: E402
from bot.conversation import Conversation  # noqa: E402
from bot.incidents.sync import IncidentDestination  # noqa: E402
from bot.runner import Runner  # noqa: E402
from bot.slack.notify import SlackDestination  # noqa: E402
from bot.sources.pool import SourcePool  # noqa: E402
from bot.store import db, repo  # noqa: E402
from tests.promharness import History, PrometheusServer, build_tsdb  # noqa: E402


def bare_cycle(engine: object, sources: SourcePool, at: object, concurrency: int) -> float:
    """The cycle's source queries alone, at the same concurrency: the floor of a cycle."""
    with Session(engine) as session:  # type: ignore[call-overload]
        records = repo.list_slos(session=session)
    plans = [evaluation.make_plan(slo_of(r), r, at) for r in records]  # type: ignore[arg-type]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda p: evaluation.fetch(p, sources.get), plans))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--without-hooks", action="store_true", help="evaluate only, as `slo-bot check` does")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="slo-bot-cycle-"))
    server = None
    try:
        history = History.generate(days=31)
        server = PrometheusServer(build_tsdb(history, tmp / "data"))
        url = server.start()
        documents, _ = check_bench.catalogue(url, args.slos)
        (tmp / "slos.yaml").write_text(yaml.safe_dump_all(documents))
        database = f"sqlite:///{tmp / 'bot.db'}"
        import os

        os.environ["DATABASE_URL"] = database
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            cli.main(["apply", str(tmp / "slos.yaml")])
        engine = db.make_engine(database)
        sources = SourcePool(max_connections=args.concurrency)
        clock_at = [history.end - timedelta(minutes=args.cycles + 1)]
        # what `slo-bot run` adds to each SLO's transaction
        conversation = Conversation([SlackDestination("C0BENCH"), IncidentDestination()])
        hooks = [] if args.without_hooks else [conversation]
        runner = Runner(engine, sources, concurrency=args.concurrency, clock=lambda: clock_at[0], hooks=hooks)
        started = time.perf_counter()
        runner.tick()
        backfill = time.perf_counter() - started
        cycles, bares = [], []
        for _ in range(args.cycles):
            clock_at[0] += timedelta(minutes=1)
            started = time.perf_counter()
            outcomes = runner.tick()
            cycles.append(time.perf_counter() - started)
            assert len(outcomes) == args.slos and not any(o.error for o in outcomes)
            bares.append(bare_cycle(engine, sources, clock_at[0], args.concurrency))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sources.close()
        engine.dispose()
        median, bare = statistics.median(cycles), statistics.median(bares)
        print(
            f"{args.slos} SLOs, SQLite, concurrency {args.concurrency}, 2 CPUs shared with Prometheus, "
            + ("no hooks" if args.without_hooks else "with the Slack and incident hooks")
        )
        print(f"first cycle (30-day backfill): {backfill:.2f} s")
        print(
            f"steady cycle: median {median:.2f} s (min {min(cycles):.2f}, max {max(cycles):.2f}) over "
            f"{args.cycles} cycles; its source queries alone: {bare:.2f} s; ratio {median / bare:.2f}x"
        )
        print(f"peak RSS of the process: {peak:.0f} MB")
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
