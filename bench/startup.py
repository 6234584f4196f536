"""How long each `slo-bot` command takes to start, against Python's own start in the same run.

Run from the repository root:  .venv/bin/python bench/startup.py [--runs 9] [--slos 200]

Every case is a fresh `python -m bot ...` subprocess (what `slo-bot ...` runs), timed from spawn to exit;
the figure is the median of `--runs` runs, taken round-robin over the cases so a burst of load on the
machine hits them all alike, after one untimed run of each (it writes the bytecode caches). The
baselines are `python -c pass` and `python -c "import argparse"`: a command's figure over the second
is what slo-bot adds to the smallest argparse program. Target: every start under 0.3 s.

Cases: `slo-bot --help` and every command's `--help` (parsing and dispatch: what a command costs
before its own work); `validate` over the example catalogues and over a generated one of `--slos`
SLOs (a pre-commit hook); `status` on an absent database and on an empty current one (the cheapest
commands that need the database libraries). An installed slo-bot runs from compiled bytecode, so the
children run with PYTHONDONTWRITEBYTECODE unset; `--from-source` keeps the environment as it is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import check_bench  # noqa: E402  (the catalogue generator)

TARGET_S = 0.3
COMMANDS = ("validate", "apply", "check", "replay", "run", "demo", "status", "db")
# the example catalogues read secrets from the environment; placeholders make them valid
EXAMPLE_ENV = {
    "PROMETHEUS_URL": "http://prometheus.example:9090",
    "PAGERDUTY_ROUTING_KEY": "0" * 32,
    "OPSGENIE_API_KEY": "placeholder-opsgenie-key",
    "PAYMENTS_WEBHOOK_URL": "https://hooks.example/payments",
    "PAYMENTS_WEBHOOK_SECRET": "placeholder-webhook-secret",
}


@dataclass
class Case:
    label: str
    argv: list[str]
    exit_code: int = 0  # what the command must exit with, or the run is not the case it claims to be
    target: bool = True  # held to the start target
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run_once(case: Case, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(case.argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if result.returncode != case.exit_code:
        said = result.stdout + result.stderr
        raise SystemExit(f"{case.label}: exit {result.returncode}, expected {case.exit_code}\n{said}")
    return took


def cases(tmp: Path, slos: int) -> list[Case]:
    python = sys.executable
    bot = [python, "-m", "bot"]
    docs, _ = check_bench.catalogue("http://prometheus.example:9090", slos)
    generated = tmp / "catalogue.yaml"
    generated.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    examples = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.yaml"))
    return [
        Case("python -c pass", [python, "-c", "pass"], target=False),
        Case('python -c "import argparse"', [python, "-c", "import argparse"], target=False),
        Case("slo-bot --help", [*bot, "--help"]),
        *(Case(f"slo-bot {c} --help", [*bot, *c.split(), "--help"]) for c in COMMANDS),
        Case(f"slo-bot validate examples/*.yaml ({len(examples)} files)", [*bot, "validate", *examples]),
        Case(f"slo-bot validate ({slos} generated SLOs)", [*bot, "validate", str(generated)]),
        Case("slo-bot status (no database file)", [*bot, "status"], exit_code=1, target=False),
        Case("slo-bot status (empty current database)", [*bot, "status", "--json"], target=False),
    ]


def environment(from_source: bool) -> dict[str, str]:
    env = {**os.environ, **EXAMPLE_ENV}
    env.pop("SLO_BOT_CONFIG", None)
    if not from_source:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9, help="timed runs per case (median shown)")
    parser.add_argument("--slos", type=int, default=200, help="SLOs in the generated catalogue")
    parser.add_argument(
        "--from-source",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set (every run compiles bot/ from source)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="slo-bot-startup-") as name:
        tmp = Path(name)
        env = environment(args.from_source)
        all_cases = cases(tmp, args.slos)
        absent = {**env, "DATABASE_URL": f"sqlite:///{tmp / 'absent.db'}"}
        empty = {**env, "DATABASE_URL": f"sqlite:///{tmp / 'empty.db'}"}
        upgrade = [sys.executable, "-m", "bot", "db", "upgrade"]  # the empty current database, untimed
        subprocess.run(upgrade, cwd=ROOT, env=empty, check=True, capture_output=True)
        env_of = {
            "slo-bot status (no database file)": absent,
            "slo-bot status (empty current database)": empty,
        }
        for case in all_cases:  # untimed: bytecode caches written, files in the page cache
            run_once(case, env_of.get(case.label, env))
        load_before = os.getloadavg()[0]
        for _ in range(args.runs):
            for case in all_cases:
                case.times.append(run_once(case, env_of.get(case.label, env)))
        load_after = os.getloadavg()[0]

    argparse_s = all_cases[1].median
    bytecode = "from source each run" if env.get("PYTHONDONTWRITEBYTECODE") else "cached (as installed)"
    print(
        f"slo-bot start times: median of {args.runs} runs, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {load_before:.2f} -> {load_after:.2f}, bytecode {bytecode}"
    )
    width = max(len(c.label) for c in all_cases)
    heading = f"{'median':>8}  {'min':>7}  {'max':>7}  {'x argparse':>10}  target < {TARGET_S} s"
    print(f"{'case':<{width}}  {heading}")
    missed = 0
    for case in all_cases:
        verdict = ""
        if case.target:
            verdict = "met" if case.median < TARGET_S else "MISSED"
            missed += verdict == "MISSED"
        elif case.label.startswith("slo-bot"):
            verdict = "(loads the database libraries)"
        print(
            f"{case.label:<{width}}  {case.median:>7.3f}s  {min(case.times):>6.3f}s  {max(case.times):>6.3f}s"
            f"  {case.median / argparse_s:>9.1f}x  {verdict}"
        )
    print("every start under the target" if not missed else f"{missed} start(s) over the target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
