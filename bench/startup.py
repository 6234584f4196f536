"""How long each `slo-bot` command takes to start, against Python's own start in the same run.

Run from the repository root:  .venv/bin/python bench/startup.py [--runs 15] [--slos 200]

Every case is a fresh `python -m bot ...` process (what `slo-bot ...` runs), timed from spawn to exit:
the wall time, and the CPU time the process used (user + system, from `wait4`), which moves much less
than the wall time when other work shares the CPUs. Figures are medians of `--runs` runs, taken
round-robin over the cases so that a burst of load hits them all alike, after one untimed run of each
(it checks the exit code and writes the bytecode caches). The baselines are `python -c pass` and
`python -c "import argparse"`: a command's time over the second is what slo-bot adds to the smallest
argparse program. Target: every start under 0.3 s (wall).

Cases: `slo-bot --help` and every command's `--help` (parsing and dispatch: what a command costs
before its own work); `validate` over the example catalogues and over a generated one of `--slos`
SLOs (a pre-commit hook; the generated one is reported with its cost per SLO, not held to the start
target); then the commands that need the database libraries (reported, not held to the target):
`status` on an absent database file and on an empty current database, `db upgrade` with nothing to
upgrade, `apply` of a catalogue already stored (nothing changes), and `check` of a name no SLO has (it
loads all it would evaluate with and opens the database, then refuses the name: its start before its
work), each on SQLite; and the floor of those, `python -c "import sqlalchemy"` and `python -c
"import sqlmodel"`. An installed slo-bot runs from compiled bytecode, so the children run with
PYTHONDONTWRITEBYTECODE unset; `--from-source` keeps the environment as it is.
"""

from __future__ import annotations

import argparse
import os
import re
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
    "DD_API_KEY": "placeholder-datadog-api-key",
    "DD_APP_KEY": "placeholder-datadog-app-key",
    "PAGERDUTY_ROUTING_KEY": "0" * 32,
    "OPSGENIE_API_KEY": "placeholder-opsgenie-key",
    "PAYMENTS_WEBHOOK_URL": "https://hooks.example/payments",
    "PAYMENTS_WEBHOOK_SECRET": "placeholder-webhook-secret",
}


@dataclass
class Case:
    label: str
    argv: list[str]
    env: dict[str, str]
    exit_code: int = 0  # what the command must exit with, or the run is not the case it claims to be
    target: bool = True  # held to the start target
    note: str = ""  # said instead of a verdict when not held to it
    output: str = ""  # of the untimed run
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def check(self) -> None:
        """One untimed run: the command does what the case says (and its bytecode gets cached)."""
        result = subprocess.run(self.argv, cwd=ROOT, env=self.env, capture_output=True, text=True)
        self.output = result.stdout + result.stderr
        if result.returncode != self.exit_code:
            raise SystemExit(
                f"{self.label}: exit {result.returncode}, expected {self.exit_code}\n{self.output}"
            )

    def time(self) -> None:
        started = time.perf_counter()
        child = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(child.pid, 0)
        self.wall.append(time.perf_counter() - started)
        self.cpu.append(usage.ru_utime + usage.ru_stime)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        if child.returncode != self.exit_code:
            raise SystemExit(f"{self.label}: exit {child.returncode} this time, expected {self.exit_code}")


def cases(tmp: Path, slos: int, env: dict[str, str]) -> list[Case]:
    python = sys.executable
    bot = [python, "-m", "bot"]
    docs, _ = check_bench.catalogue("http://prometheus.example:9090", slos)
    generated = tmp / "catalogue.yaml"
    generated.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    examples = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.yaml"))
    absent = {**env, "DATABASE_URL": f"sqlite:///{tmp / 'absent.db'}"}
    empty = {**env, "DATABASE_URL": f"sqlite:///{tmp / 'empty.db'}"}
    stored = {**env, "DATABASE_URL": f"sqlite:///{tmp / 'stored.db'}"}
    subprocess.run([*bot, "db", "upgrade"], cwd=ROOT, env=empty, check=True, capture_output=True)
    checkout = "examples/checkout.yaml"
    subprocess.run([*bot, "apply", checkout], cwd=ROOT, env=stored, check=True, capture_output=True)
    database = "SQLAlchemy, SQLModel"
    return [
        Case("python -c pass", [python, "-c", "pass"], env, target=False),
        Case('python -c "import argparse"', [python, "-c", "import argparse"], env, target=False),
        Case("slo-bot --help", [*bot, "--help"], env),
        *(Case(f"slo-bot {c} --help", [*bot, c, "--help"], env) for c in COMMANDS),
        Case(f"slo-bot validate examples/*.yaml ({len(examples)} files)", [*bot, "validate", *examples], env),
        # its note is filled in by main()
        Case(
            f"slo-bot validate ({slos} generated SLOs)", [*bot, "validate", str(generated)], env, target=False
        ),
        *(
            Case(
                label, [*bot, *argv], case_env, exit_code=code, target=False, note=f"(not held: loads {libs})"
            )
            for label, argv, case_env, code, libs in (
                ("slo-bot status (no database file)", ["status"], absent, 1, database),
                ("slo-bot status (empty current database)", ["status", "--json"], empty, 0, database),
                ("slo-bot db upgrade (current database)", ["db", "upgrade"], empty, 0, database),
                (f"slo-bot apply {checkout} (stored already)", ["apply", checkout], stored, 0, database),
                (
                    "slo-bot check --slo absent (refused name)",
                    ["check", "--slo", "absent"],
                    stored,
                    1,
                    f"{database}, httpx, prometheus-client",
                ),
            )
        ),
        # what any command on the database pays before a line of slo-bot runs
        Case('python -c "import sqlalchemy"', [python, "-c", "import sqlalchemy"], env, target=False),
        Case(
            'python -c "import sqlmodel"',
            [python, "-c", "import sqlmodel"],
            env,
            target=False,
            note="(SQLAlchemy, its ORM and pydantic)",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per case (medians shown)")
    parser.add_argument("--slos", type=int, default=200, help="SLOs in the generated catalogue")
    parser.add_argument(
        "--from-source",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set (every run compiles bot/ from source)",
    )
    args = parser.parse_args(argv)
    env = {**os.environ, **EXAMPLE_ENV}
    env.pop("SLO_BOT_CONFIG", None)
    if not args.from_source:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="slo-bot-startup-") as name:
        all_cases = cases(Path(name), args.slos, env)
        for case in all_cases:
            case.check()
        load_before = os.getloadavg()[0]
        for _ in range(args.runs):
            for case in all_cases:
                case.time()
        load_after = os.getloadavg()[0]

    # after the two baselines, `--help` and each command's: the two `validate` cases
    examples, generated = all_cases[3 + len(COMMANDS) : 5 + len(COMMANDS)]
    found = re.search(r"(\d+) SLO\(s\) valid", examples.output)
    assert found is not None, examples.output
    more = statistics.median(generated.wall) - statistics.median(examples.wall)
    generated.note = f"(not held: {more / (args.slos - int(found[1])) * 1000:.2f} ms per SLO more)"

    argparse_s = statistics.median(all_cases[1].wall)
    bytecode = "compiled each run" if env.get("PYTHONDONTWRITEBYTECODE") else "cached (as installed)"
    print(
        f"slo-bot start times: medians of {args.runs} runs; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {load_before:.2f} -> {load_after:.2f}, bytecode {bytecode}"
    )
    width = max(len(c.label) for c in all_cases)
    heading = f"{'wall':>7}  {'min':>6}  {'CPU':>6}  {'x argparse':>10}  target: wall < {TARGET_S} s"
    print(f"{'case':<{width}}  {heading}")
    missed = 0
    for case in all_cases:
        wall, cpu = statistics.median(case.wall), statistics.median(case.cpu)
        verdict = case.note
        if case.target:
            verdict = "met" if wall < TARGET_S else "MISSED"
            missed += verdict == "MISSED"
        print(
            f"{case.label:<{width}}  {wall:>6.3f}s  {min(case.wall):>5.3f}s  {cpu:>5.3f}s"
            f"  {wall / argparse_s:>9.1f}x  {verdict}"
        )
    print("every start under the target" if not missed else f"{missed} start(s) over the target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
