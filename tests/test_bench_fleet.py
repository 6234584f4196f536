"""The fleet benchmark (bench/fleet_bench.py) at a tiny size: 2 grouped definitions of 3 routes on one
replica and then on two. Its figures must add up: the two replicas ask the source what one does,
every member is evaluated once a tick, and the report prints what it measured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench import fleet_bench
from tests.promharness import PrometheusServer, tools_problem


def test_two_replicas_ask_what_one_asks_and_evaluate_every_member_once_a_tick(tmp_path: Path) -> None:
    problem = tools_problem()
    if problem:
        pytest.fail(problem)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    data = fleet_bench.history(tmp_path, 2, 3, now - timedelta(hours=2), now + timedelta(minutes=10))
    runs = []
    with PrometheusServer(data) as server:
        log = fleet_bench.QueryLog(server.url)
        url = log.start()
        assert server._process is not None
        try:
            for replicas in (1, 2):
                runs.append(
                    fleet_bench.run_fleet(
                        work=tmp_path,
                        log=log,
                        source_url=url,
                        prometheus_pid=server._process.pid,
                        definitions=2,
                        members=3,
                        replicas=replicas,
                        interval="10s",
                        interval_s=10,
                        steady_ticks=1,
                        timeout_s=90,
                    )
                )
        finally:
            log.stop()
    alone, fleet = runs
    for run in runs:
        assert run["members"] == 6 and run["steady_members_evaluated"] == 6
        assert run["duplicate_evaluations"] == 0
        assert run["first_queries"] > max(run["steady_queries"]) > 0  # the first cycle backfills
        assert all(code == 0 for code in run["exit_codes"].values())
        assert not any(run["log_problems"].values()), run["log_problems"]
        # a month of a 30-day member: its 1,859 buckets at the bytes a row measured, and more
        assert run["month_bytes_per_member"] > 1859 * run["bucket_row_bytes"] > 0
    assert set(fleet["steady_queries"]) == set(alone["steady_queries"])  # one query per definition and range
    assert sum(fleet["steady_shares"][0].values()) == 2
    assert fleet["steady_evaluations"] == 6
    text = fleet_bench.report(runs, "10s")
    assert "2x3-1r" in text and "2x3-2r" in text and "Where this machine is the limit" in text
