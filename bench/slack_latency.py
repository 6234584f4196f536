"""Latency of `/slo status` with 1,000 SLOs stored, through the real HTTP endpoint of `slo-bot run`.

Run from the repository root:  .venv/bin/python bench/slack_latency.py [--slos 1000] [--requests 400]
                                [--concurrency 20] [--history 360] [--database-url URL] [--profile]

Everything runs on 127.0.0.1, in one temp dir removed at the end, and stops by itself:
1. applies a generated catalogue of N SLOs (25 services, Simulated DataSources) to a fresh database,
   then writes the state a bot has after six hours at a 1-minute interval straight into the store:
   `--history` status snapshots per SLO (the newest one varied: budget left, burn, state), firing
   alerts for 5 % of the SLOs, silences for 1 %. (Evaluating 1,000 simulated SLOs first would take
   minutes and measure the evaluation, not the answer.)
2. starts a local fake Slack Web API (tests/fakeslack.py) and `slo-bot run --port P` in HTTP mode
   against it. The catalogue's one secret (`${SLO_BOT_BENCH_SEED}`) is left unset for the bot, so its
   scheduler cannot rebuild and re-evaluate the SLOs and the stored state stays as written; the
   evaluation interval is 1h, so no tick runs while measuring.
3. baseline: the same number of `GET /healthz` (two reads and a rolled-back write in a worker thread) at the
   same concurrency, to the same server;
4. sends `/slo status` as Slack does (form-encoded, signed), C at a time, R in total, and checks each
   is acknowledged with an empty 200 and answered at its response_url with the first page of all N
   SLOs; a request's latency runs until that answer has arrived (what the user waits for);
5. prints p50 / p99 / max latency, errors, throughput and the ratio to the baseline. Exit status 0
   when p99 < 300 ms with no error.

`--profile` also profiles the handler in-process (cProfile of `bot.slack.commands.answer` against the
same database) and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.store import db  # noqa: E402
from tests.fakeslack import FakeSlack  # noqa: E402
from tests.slack.harness import SEED_VARIABLE, BotProcess, apply_frozen, store_status  # noqa: E402

TARGET_P99 = 0.300


def catalogue(count: int) -> str:
    docs = [
        f"""apiVersion: openslo/v1
kind: DataSource
metadata: {{name: sim}}
spec:
  type: Simulated
  connectionDetails: {{seed: "${{{SEED_VARIABLE}}}", requests_per_minute: 600}}
"""
    ]
    for i in range(count):
        docs.append(
            f"""apiVersion: openslo/v1
kind: SLO
metadata:
  name: service-{i % 25:02d}-endpoint-{i:04d}-availability
  annotations: {{slo-bot/channel: C0BENCH{i % 25:02d}}}
spec:
  service: service-{i % 25:02d}
  indicator:
    metadata: {{name: requests-{i}}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: {(0.99, 0.995, 0.999, 0.9995)[i % 4]}}}]
"""
        )
    return "---\n".join(docs)


@dataclass
class Result:
    name: str
    seconds: list[float]
    errors: list[str]
    wall: float

    def quantile(self, q: float) -> float:
        """The q-quantile, nearest rank."""
        ordered = sorted(self.seconds)
        return ordered[max(0, min(len(ordered), math.ceil(q * len(ordered))) - 1)] if ordered else math.nan

    def line(self) -> str:
        p50, p99, top = (self.quantile(q) * 1000 for q in (0.5, 0.99, 1.0))
        return (
            f"{self.name:<22} n={len(self.seconds):<4} errors={len(self.errors):<3} "
            f"p50={p50:7.1f} ms  p99={p99:7.1f} ms  max={top:7.1f} ms  "
            f"{len(self.seconds) / self.wall:6.1f} req/s"
        )


def hammer(name: str, request: Callable[[httpx.Client], str | None], total: int, concurrency: int) -> Result:
    """`total` requests, `concurrency` at a time (one connection per worker); None from `request` is ok."""
    local = threading.local()
    clients: list[httpx.Client] = []
    seconds: list[float] = []
    errors: list[str] = []

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:  # one connection per worker: a kept-alive one is never left idle
            client = local.client = httpx.Client(timeout=30)
            clients.append(client)
        started = time.perf_counter()
        try:
            problem = request(client)
        except httpx.HTTPError as err:
            problem = f"{err.__class__.__name__}: {err}"
        seconds.append(time.perf_counter() - started)
        if problem:
            errors.append(problem)

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, range(total)))
    finally:
        for client in clients:
            client.close()
    return Result(name, seconds, errors, time.perf_counter() - started)


def profile_handler(database_url: str, count: int) -> str:
    """cProfile of the `/slo status` answer in-process, against the same database: computed afresh
    each time (as after every change), then served from the kept status lines."""
    from bot.conversation import Conversation
    from bot.slack.commands import Invocation, answer
    from bot.slack.deps import SlackDeps
    from bot.slack.permissions import Responders
    from bot.slack.state import StatusBoard

    engine = db.make_engine(database_url)
    deps = SlackDeps(
        engine=engine,
        clock=lambda: datetime.now(UTC),
        responders=Responders(None, ()),  # type: ignore[arg-type]  (status checks no one)
        wake_delivery=lambda: None,
        conversation=Conversation([]),  # status acknowledges nothing
    )
    invocation = Invocation(user="U0BENCH", channel="C0BENCH00", words=("status",))
    runs = 20

    def timed(fresh: bool) -> tuple[float, cProfile.Profile]:
        profiler = cProfile.Profile()
        elapsed = 0.0
        for _ in range(runs):
            used = replace(deps, board=StatusBoard()) if fresh else deps
            started = time.perf_counter()
            profiler.enable()
            payload = answer(used, invocation)
            profiler.disable()
            elapsed += time.perf_counter() - started
            assert f"{count} SLO(s)" in payload["text"]
        return elapsed / runs, profiler

    answer(deps, invocation)  # warm the engine's pool
    cold, profiler = timed(fresh=True)
    warm, _ = timed(fresh=False)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
    engine.dispose()
    return (
        f"in-process answer() under cProfile: {cold * 1000:.1f} ms computed afresh, "
        f"{warm * 1000:.1f} ms from the kept lines\n{out.getvalue()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--history", type=int, default=360, help="snapshots per SLO (6h at 1m)")
    parser.add_argument("--database-url", help="an empty database to use (default: SQLite in a temp dir)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the handler in-process")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="slo-bot-bench-") as tmp:
        tmp_path = Path(tmp)
        url = args.database_url or f"sqlite:///{tmp_path / 'bench.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()

        started = time.perf_counter()
        (tmp_path / "slos.yaml").write_text(catalogue(args.slos))
        apply_frozen(url, tmp_path / "slos.yaml")
        store_status(url, history=args.history, alerts_every=20, silences_every=100)
        alerts, silences = len(range(0, args.slos, 20)), len(range(0, args.slos, 100))
        print(
            f"stored {args.slos} SLOs, {args.slos * args.history:,} snapshots, {alerts} firing alerts, "
            f"{silences} silences in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})"
        )

        with (
            FakeSlack() as slack,
            BotProcess(tmp_path, url, slack, env={"SLO_BOT_EVAL_INTERVAL": "1h"}, name="bench") as bot,
        ):
            deadline = time.monotonic() + 120
            while not bot.http.get("/healthz").json()["evaluations_completed"]:  # the start-up tick is over
                if time.monotonic() > deadline:
                    raise SystemExit("the bot's first tick did not finish within 120 s")
                time.sleep(0.2)
            expected = f"{args.slos} SLO(s), page 1 of"

            def health(client: httpx.Client) -> str | None:
                response = client.get(bot.url + "/healthz")
                return None if response.status_code == 200 else f"HTTP {response.status_code}"

            def status(client: httpx.Client) -> str | None:
                body = bot.command_body("status", user="U0BENCH", channel="C0BENCH00")
                headers = {"Content-Type": "application/x-www-form-urlencoded", **_signed(body)}
                response = client.post(bot.url + "/slack/events", content=body.encode(), headers=headers)
                if response.status_code != 200 or response.content:
                    return f"HTTP {response.status_code}: {response.text[:200]}"
                key = parse_qs(body)["response_url"][0].rsplit("/", 1)[-1]
                answer = json.dumps(slack.wait_response(key, timeout=30))
                return None if expected in answer else f"unexpected answer: {answer[:200]}"

            hammer("warm-up", status, args.concurrency, args.concurrency)
            baseline = hammer("GET /healthz", health, args.requests, args.concurrency)
            measured = hammer("/slo status (signed)", status, args.requests, args.concurrency)
            log = bot.log()

        print(f"{args.requests} requests each, {args.concurrency} concurrent, on {os.cpu_count()} CPU(s):")
        print("  " + baseline.line())
        print("  " + measured.line())
        ratio50 = measured.quantile(0.5) / baseline.quantile(0.5)
        ratio99 = measured.quantile(0.99) / baseline.quantile(0.99)
        print(f"  ratio to the baseline: p50 x{ratio50:.1f}, p99 x{ratio99:.1f}")
        for problem in sorted(set(measured.errors + baseline.errors))[:5]:
            print(f"  error: {problem}")
        if "Traceback" in log:
            print("the bot logged errors:\n" + log[-3000:])
        if args.profile:
            print(profile_handler(url, args.slos))
        ok = measured.quantile(0.99) < TARGET_P99 and not measured.errors and not baseline.errors
        print(f"target p99 < {TARGET_P99 * 1000:.0f} ms and no error: {'met' if ok else 'MISSED'}")
        return 0 if ok else 1


def _signed(body: str) -> dict[str, str]:
    from tests.slack.harness import signed_headers

    return signed_headers(body)


if __name__ == "__main__":
    sys.exit(main())
