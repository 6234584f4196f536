"""SLO_BOT_LOG_FORMAT: human text by default; JSON lines naming the SLO, replica and tick."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot import cli, logs

CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: gone}
spec:
  type: Prometheus
  connectionDetails: {url: "http://127.0.0.1:9", timeout: 1s}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: unreachable}
spec:
  service: other
  indicator:
    metadata: {name: prom-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {metricSourceRef: gone, spec: {query: 'up{job="x"}'}}}
        total: {metricSource: {metricSourceRef: gone, spec: {query: 'up'}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""


def _logger(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    logger = logging.getLogger(f"tests.logs.{fmt}")
    logger.handlers[:] = [logs.make_handler(fmt, out, replica="replica-a")]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_carry_the_slo_replica_tick_and_exception() -> None:
    logger, out = _logger("json")
    logger.warning("outside any tick")
    with logs.context(tick="2026-11-30T12:00:05+00:00"):
        with logs.context(slo="checkout-availability"):
            try:
                raise RuntimeError("the database went away")
            except RuntimeError:
                logger.exception("storing failed")
        logger.info("tick done")
    first, failed, done = _lines(out)
    assert first["message"] == "outside any tick" and first["level"] == "WARNING"
    assert first["logger"] == "tests.logs.json" and first["replica"] == "replica-a"
    assert first["time"].endswith("+00:00") and "slo" not in first and "tick" not in first
    assert failed["slo"] == "checkout-availability" and failed["tick"] == "2026-11-30T12:00:05+00:00"
    assert failed["level"] == "ERROR" and "RuntimeError: the database went away" in failed["exception"]
    assert done["tick"] == "2026-11-30T12:00:05+00:00" and "slo" not in done


def test_context_reaches_pool_threads_through_carry() -> None:
    logger, out = _logger("json")
    with logs.context(tick="T1"), ThreadPoolExecutor(2) as pool:
        pool.submit(logs.carry(logger.warning, slo="a"), "fetched").result()
        pool.submit(logger.warning, "bare").result()  # a thread of its own knows no tick
    carried, bare = _lines(out)
    assert (carried["slo"], carried["tick"]) == ("a", "T1")
    assert "tick" not in bare


def test_text_is_the_default_and_unchanged() -> None:
    logger, out = _logger(logs.parse_format(None))
    with logs.context(slo="x"):
        logger.warning("unreachable: no answer")
    assert out.getvalue() == "WARNING tests.logs.text: unreachable: no answer\n"


@pytest.mark.parametrize("value", ["yaml", "JSONL", "1"])
def test_an_unknown_format_is_refused_clearly(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLO_BOT_LOG_FORMAT", value)
    assert cli.main(["status"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        f"slo-bot: SLO_BOT_LOG_FORMAT={value!r} is not a log format: use text or json\n"
    )


def _run(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    (tmp_path / "slos.yaml").write_text(CATALOGUE)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SLO_BOT_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'slo-bot.db'}",
        "SLO_BOT_CONFIG": str(tmp_path / "slos.yaml"),
        "SLO_BOT_EVAL_INTERVAL": "2s",
        "SLO_BOT_HOST": "127.0.0.1",
        "SLO_BOT_LOG_FORMAT": "json",
        "SLO_BOT_REPLICA": "slo-bot-0",
        **env,
    }
    with (tmp_path / "stdout").open("wb") as out, (tmp_path / "stderr").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--port", str(port)], env=environment, stdout=out, stderr=err
        )


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    """Every stderr line but the apply summary `run` prints first (command output, not a log line)."""
    lines = (tmp_path / "stderr").read_text().splitlines()
    assert lines[:2] == ["created: unreachable", "1 created, 0 updated, 0 unchanged, 0 deleted"]
    return [json.loads(line) for line in lines[2:]]  # each one JSON object, or this raises


def test_run_in_json_mode_logs_one_object_a_line_with_slo_replica_and_tick(tmp_path: Path) -> None:
    bot = _run(tmp_path, 0)
    try:
        deadline = time.monotonic() + 30
        while "will retry next tick" not in (tmp_path / "stderr").read_text():
            assert time.monotonic() < deadline and bot.poll() is None, (tmp_path / "stderr").read_text()
            time.sleep(0.2)
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(timeout=30) == 0
    finally:
        bot.kill()
        bot.wait()
    records = _records(tmp_path)
    assert records[0]["logger"] == "bot.run" and "console mode" in records[0]["message"]
    failed = next(r for r in records if "will retry next tick" in r["message"])
    assert failed["level"] == "WARNING" and failed["slo"] == "unreachable"
    assert failed["replica"] == "slo-bot-0" and failed["tick"].endswith("+00:00")
    assert "127.0.0.1:9" in failed["message"]


def test_third_party_lines_are_json_too(tmp_path: Path) -> None:
    with socket.socket() as taken:  # uvicorn cannot bind: it says so on its own logger
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bot = _run(tmp_path, taken.getsockname()[1])
        try:
            assert bot.wait(timeout=30) != 0
        finally:
            bot.kill()
            bot.wait()
    records = _records(tmp_path)
    uvicorn = [r for r in records if r["logger"].startswith("uvicorn")]
    assert uvicorn and "address already in use" in uvicorn[0]["message"]
    assert uvicorn[0]["level"] == "ERROR" and uvicorn[0]["replica"] == "slo-bot-0"


def test_check_logs_name_the_slo_and_the_evaluation(tmp_path: Path) -> None:
    (tmp_path / "slos.yaml").write_text(CATALOGUE)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SLO_BOT_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'slo-bot.db'}",
        "SLO_BOT_CONFIG": str(tmp_path / "slos.yaml"),
        "SLO_BOT_LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == cli.EXIT_UNAVAILABLE
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failed = next(r for r in records if r["logger"] == "bot.jobs")
    assert failed["slo"] == "unreachable" and failed["tick"].endswith("+00:00")
    # what check prints as its result stays a line for the person at the terminal
    assert any(line.startswith("slo-bot: unreachable: ") for line in result.stderr.splitlines())
