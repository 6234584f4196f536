"""Alert quality: slo-bot's alerts against the arithmetic and against Prometheus evaluating the same rules.

Run from the repository root:  .venv/bin/python bench/alert_quality.py

What it does, all on 127.0.0.1 and in one temp dir removed at the end:
1. generates the scenarios of tests/scenarios.py (outage, slow burn, baseline, low traffic, scrape
   gap: 31 days of lead-in plus the events, one series pair per scenario), backfills them with
   promtool and starts a Prometheus on them (stopped at the end);
2. per scenario runs `slo-bot apply` and `slo-bot replay --from --to --step 1m --json` (the installed
   console script, on a throwaway SQLite database);
3. evaluates the same multi-window multi-burn-rate rules as Sloth-style PromQL with Prometheus's
   `query_range` at a 1m step over the same span (ticket inhibited while the page fires, as
   Alertmanager's inhibit_rules would) and `absent_over_time` for no data;
4. prints per scenario the detection time against the theory, the reset time, the false alerts
   (alerts the scenario should not raise) of both, and how they differ; then the messages and
   acknowledgements per breach of slo-bot, of slo-bot before breaches (one message per alert key),
   and of Alertmanager grouping Sloth's alerts by SLO (bench/grouping.py);
5. runs `promtool test rules` on a rule file generated for the outage, to show the rules are valid;
6. times `slo-bot replay` of 30 days at a 1-minute step for one SLO.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import grouping  # noqa: E402
from tests.scenarios import (  # noqa: E402  (the repo root must be on sys.path first)
    HISTORY_END,
    HISTORY_START,
    MINUTE,
    NO_DATA,
    PAGE,
    PERIOD,
    TICKET,
    Scenario,
    Transition,
    alert_expressions,
    catalogue,
    generate,
    prometheus_transitions,
    serve,
)

SLO_BOT = Path(sys.executable).parent / "slo-bot"
BREACHES: dict[str, list[int | None]] = {}  # per scenario: each replayed transition's breach number
REPLAY_TARGET_S = 60.0


@dataclass(frozen=True)
class Quality:
    """What one system raised on one scenario, measured against the scenario's theory."""

    system: str
    transitions: list[Transition]
    fired: datetime | None  # first firing of the scenario's alert
    resolved: datetime | None  # its resolution
    false_alerts: list[str]  # "key@HH:MM" of every firing the scenario should not raise


def measure(system: str, scenario: Scenario, transitions: list[Transition]) -> Quality:
    key = scenario.detect_key
    fired = next((t for t, k, e in transitions if k == key and e == "firing"), None)
    resolved = next(
        (t for t, k, e in transitions if k == key and e == "resolved" and fired and t > fired), None
    )
    false = [f"{k}@{t:%d %H:%M}" for t, k, e in transitions if e == "firing" and k not in scenario.wanted]
    return Quality(system, transitions, fired, resolved, false)


def replay(scenario: Scenario, url: str, work: Path) -> tuple[list[Transition], float]:
    """`slo-bot replay` over the scenario's span as a user runs it; (transitions, wall seconds)."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{scenario.name}.yaml"
    path.write_text(catalogue(scenario, url))
    env = {k: v for k, v in os.environ.items() if k != "SLO_BOT_CONFIG"}
    env["DATABASE_URL"] = f"sqlite:///{work / scenario.name}.db"
    start, end = scenario.span
    run([str(SLO_BOT), "apply", str(path)], env)
    began = time.perf_counter()
    out = run(
        [str(SLO_BOT), "replay", "--from", iso(start), "--to", iso(end), "--step", "1m", "--json"],
        env,
    )
    seconds = time.perf_counter() - began
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    BREACHES[scenario.name] = [x.get("breach") for x in lines]
    return [(parse_time(x["at"]), x["severity"], x["event"]) for x in lines], seconds


def run(argv: Sequence[str], env: dict[str, str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def span(value: timedelta | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    sign = "-" if value < timedelta(0) else ("+" if signed else "")
    seconds = abs(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{sign}{int(hours // 24)}d{int(hours % 24):02d}h{int(minutes):02d}m"
    if hours:
        tail = f"{round(secs):02d}s" if round(secs) else ""
        return f"{sign}{int(hours)}h{int(minutes):02d}m{tail}"
    if minutes:
        return f"{sign}{int(minutes)}m{secs:05.2f}s".replace(".00s", "s")
    return f"{sign}{secs:.2f}s".replace(".00s", "s")


def since(at: datetime | None, origin: datetime | None) -> timedelta | None:
    return None if at is None or origin is None else at - origin


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows)


def report(scenario: Scenario, results: list[Quality]) -> str:
    key = scenario.detect_key or "-"
    rows = [
        [
            "SYSTEM",
            "ALERT",
            "DETECTED AFTER START",
            "VS THEORY",
            "RESET AFTER RECOVERY",
            "VS THEORY",
            "FALSE ALERTS",
        ]
    ]
    for q in results:
        rows.append(
            [
                q.system,
                key,
                span(since(q.fired, scenario.problem_start)),
                span(since(q.fired, scenario.detect_theory), signed=True),
                span(since(q.resolved, scenario.problem_end)),
                span(since(q.resolved, scenario.reset_theory), signed=True),
                f"{len(q.false_alerts)}" + (f" ({', '.join(q.false_alerts[:4])})" if q.false_alerts else ""),
            ]
        )
    theory = [
        f"theory: detected {span(since(scenario.detect_theory, scenario.problem_start))} after start"
        if scenario.detect_theory
        else "theory: nothing should fire",
        f"reset {span(since(scenario.reset_theory, scenario.problem_end))} after recovery"
        if scenario.reset_theory
        else "",
    ]
    head = f"== {scenario.name}: {scenario.summary} ({iso(scenario.span[0])} .. {iso(scenario.span[1])})"
    others = [f"   {t:%d %H:%M}Z {k} {e}" for t, k, e in results[0].transitions if k != key]
    lines = [head, table(rows), "   " + "; ".join(p for p in theory if p), difference(scenario, *results)]
    if others:
        lines.append("   slo-bot's other transitions:\n" + "\n".join(others))
    return "\n".join(lines)


def difference(scenario: Scenario, bot: Quality, prom: Quality) -> str:
    verb = {PAGE: "pages", TICKET: "tickets", NO_DATA: "raises no-data"}.get(scenario.detect_key or "", "")
    parts = []
    if bot.fired and prom.fired:
        parts.append(f"slo-bot {verb} {_relative(bot.fired - prom.fired, '0 s later')} than Prometheus")
    if bot.resolved and prom.resolved:
        parts.append(f"resets {_relative(bot.resolved - prom.resolved, 'at the same time')}")
    parts.append(f"false alerts: slo-bot {len(bot.false_alerts)}, Prometheus {len(prom.false_alerts)}")
    return "   difference: " + "; ".join(parts)


def _relative(delta: timedelta, same: str) -> str:
    if not delta:
        return same
    return f"{span(abs(delta))} {'later' if delta > timedelta(0) else 'earlier'}"


# --- promtool test rules ------------------------------------------------------------------------------


def promtool_rules(scenario: Scenario, work: Path) -> str:
    """A rule file with the scenario's page and ticket alerts, and a promtool unit test of a 10-minute
    outage from minute 120: paged at 121 (the first evaluation after 51.84 s), still at 159 (an outage
    minute in the 30m window), resolved at 160."""
    exprs = alert_expressions(scenario)
    rules = {
        "groups": [
            {
                "name": f"slo-{scenario.name}",
                "rules": [
                    {"alert": "SLOPage", "expr": exprs[PAGE], "labels": {"severity": PAGE}},
                    {"alert": "SLOTicket", "expr": exprs[TICKET], "labels": {"severity": TICKET}},
                ],
            }
        ]
    }
    rule_file = work / "slo-rules.json"  # JSON is YAML: promtool reads it as is
    rule_file.write_text(json.dumps(rules, indent=2))
    good, bad = scenario.good_selector, scenario.bad_selector
    page = [{"exp_labels": {"severity": PAGE}}]
    tests = {
        "rule_files": [str(rule_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # 1,000 requests a minute; minutes 120-129 all fail
                    {"series": good, "values": "0+1000x120 120000+0x9 121000+1000x300"},
                    {"series": bad, "values": "0+0x120 1000+1000x9 10000+0x300"},
                ],
                "alert_rule_test": [
                    {"eval_time": "120m", "alertname": "SLOPage", "exp_alerts": []},
                    {"eval_time": "121m", "alertname": "SLOPage", "exp_alerts": page},
                    {"eval_time": "159m", "alertname": "SLOPage", "exp_alerts": page},
                    {"eval_time": "160m", "alertname": "SLOPage", "exp_alerts": []},
                ],
            }
        ],
    }
    test_file = work / "slo-rules-test.json"
    test_file.write_text(json.dumps(tests, indent=2))
    result = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True)
    verdict = "SUCCESS" if result.returncode == 0 else f"FAILED:\n{result.stdout}{result.stderr}"
    return f"promtool test rules ({scenario.name}: paged at 121m, kept at 159m, resolved at 160m): {verdict}"


# --- main ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (TSDB, catalogues, rule files)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("promtool") is None or shutil.which("prometheus") is None:
        print("needs prometheus and promtool: apt-get install -y prometheus", file=sys.stderr)
        return 2
    if not SLO_BOT.exists():
        print(f"needs the slo-bot console script at {SLO_BOT}: run `make setup`", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="slo-bot-alert-quality-"))
    try:
        return bench(work)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def bench(work: Path) -> int:
    began = time.perf_counter()
    scenarios = generate()
    with serve(scenarios, work) as url, httpx.Client(base_url=url, timeout=60) as client:
        print(
            f"Prometheus {url}: {len(scenarios)} scenarios, {iso(HISTORY_START)} .. {iso(HISTORY_END)} "
            f"at 1-minute samples, ready in {time.perf_counter() - began:.1f} s\n"
        )
        for scenario in scenarios:
            transitions, _ = replay(scenario, url, work)
            bot = measure("slo-bot", scenario, transitions)
            prom = measure("Prometheus", scenario, prometheus_transitions(client, scenario))
            print(report(scenario, [bot, prom]) + "\n")
            numbers = BREACHES[scenario.name]
            loads = [
                grouping.slo_bot(transitions, numbers),
                grouping.per_alert(transitions),
                grouping.alertmanager(prom.transitions, scenario.span[1]),
            ]
            breaches = len({n for n in numbers if n is not None})
            print(grouping.render(scenario.name, loads, breaches) + "\n")
        print(promtool_rules(next(s for s in scenarios if s.name == "outage"), work))
        baseline = next(s for s in scenarios if s.name == "baseline")
        end = HISTORY_END
        timed = dataclasses.replace(baseline, span=(end - PERIOD, end))
        transitions, seconds = replay(timed, url, work / "timed")
        steps = int(PERIOD / MINUTE) + 1
        held = span(HISTORY_END - HISTORY_START)
        verdict = "ok" if seconds < REPLAY_TARGET_S else f"SLOWER than the {REPLAY_TARGET_S:.0f} s target"
        print(
            f"slo-bot replay of 30 days at a 1m step, one SLO: {steps:,} evaluations, 60 days fetched "
            f"at 1m (30-day lookback; Prometheus holds the last {held}): {seconds:.1f} s wall "
            f"(process start to exit), {verdict}; {len(transitions)} transition(s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
