"""Scheduler cycles of many SLOs against a real local Prometheus: seconds per cycle, peak RSS.

Run from the repository root: .venv/bin/python bench/cycle_bench.py [--slos 1000] [--cycles 5]

It generates 31 days of history (tests/promharness.py), starts a Prometheus on it (127.0.0.1),
applies N SLOs to a fresh SQLite database in a temp dir (or `--database postgresql`: a throwaway
database on the local PostgreSQL), then runs the scheduler's tick (`bot.runner.Runner.tick` with the
Slack and incident hooks, what `slo-bot run` does every interval, after freezing the objects loaded
by then as `slo-bot run` does) once to backfill and then `--cycles` more times, one simulated minute
apart. The baseline, measured in the same run, is the same cycle's source queries alone:
`bot.evaluation.fetch` for every SLO at the same concurrency, nothing stored (for the first cycle:
every SLO's whole window, as an empty database asks). Everything is removed at the end."""

from __future__ import annotations

import argparse
import gc
import io
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
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


def bare_cycle(
    engine: object, sources: SourcePool, at: object, concurrency: int, *, fresh: bool = False
) -> float:
    """The cycle's source queries alone, at the same concurrency: the floor of a cycle. `fresh`:
    those of a first cycle (every SLO's whole window, as an empty database asks)."""
    with Session(engine) as session:  # type: ignore[call-overload]
        records = repo.list_slos(session=session)
    if fresh:
        records = [r.model_copy(update={"covered_from": None, "covered_to": None}) for r in records]
    plans = [evaluation.make_plan(slo_of(r), r, at) for r in records]  # type: ignore[arg-type]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda p: evaluation.fetch(p, sources.get), plans))
    return time.perf_counter() - started


class ThrowawayPostgres:
    """A fresh PostgreSQL database for one run, dropped at the end."""

    def __init__(self) -> None:
        self.admin = os.environ.get("SLO_BOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
        self.name: str | None = None

    def create(self) -> str:
        import psycopg

        self.name = f"slobot_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        return f"{self.admin.rsplit('/', 1)[0]}/{self.name}"

    def drop(self) -> None:
        if self.name is None:
            return
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


pg = ThrowawayPostgres()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--without-hooks", action="store_true", help="evaluate only, as `slo-bot check` does")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="postgresql: a throwaway database on SLO_BOT_BENCH_PG (default the local server)",
    )
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
        if args.database == "postgresql":
            database = pg.create()
        os.environ["DATABASE_URL"] = database
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            cli.main(["apply", str(tmp / "slos.yaml")])
        engine = db.make_engine(database)
        sources = SourcePool(max_connections=args.concurrency)
        clock_at = [history.end - timedelta(minutes=args.cycles + 1)]
        # what `slo-bot run` adds to each SLO's transaction
        conversation = Conversation([SlackDestination("C0BENCH"), IncidentDestination()])
        hooks = [] if args.without_hooks else [conversation]
        runner = Runner(
            engine,
            sources,
            concurrency=args.concurrency,
            clock=lambda: clock_at[0],
            hooks=hooks,
            freeze_after_first_tick=True,  # as `slo-bot run`
        )
        gc.collect()  # as `slo-bot run` does before its first tick (bot/service.py)
        gc.freeze()
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
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the bare backfill's
        bare_sources = SourcePool(max_connections=args.concurrency)  # connections of its own
        try:
            bare_backfill = bare_cycle(engine, bare_sources, clock_at[0], args.concurrency, fresh=True)
        finally:
            bare_sources.close()
        sources.close()
        engine.dispose()
        median, bare = statistics.median(cycles), statistics.median(bares)
        name = "PostgreSQL" if args.database == "postgresql" else "SQLite"
        print(
            f"{args.slos} SLOs, {name}, concurrency {args.concurrency}, 2 CPUs shared with Prometheus, "
            + ("no hooks" if args.without_hooks else "with the Slack and incident hooks")
        )
        print(
            f"first cycle (30-day backfill): {backfill:.2f} s; its source queries alone: "
            f"{bare_backfill:.2f} s; ratio {backfill / bare_backfill:.2f}x (target 1.5x)"
        )
        print(
            f"steady cycle: median {median:.2f} s (min {min(cycles):.2f}, max {max(cycles):.2f}) over "
            f"{args.cycles} cycles; its source queries alone: {bare:.2f} s; ratio {median / bare:.2f}x "
            "(target 1.3x)"
        )
        print(
            f"bookkeeping per SLO (store, windows, alerts, snapshot, lease): "
            f"{(median - bare) / args.slos * 1000:.2f} ms steady, "
            f"{(backfill - bare_backfill) / args.slos * 1000:.2f} ms in the first cycle (target < 1 ms)"
        )
        print(f"peak RSS of the process: {peak:.0f} MB")
        return 0
    finally:
        if server is not None:
            server.stop()
        pg.drop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
