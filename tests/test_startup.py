"""What each command loads: `slo-bot --help` and `validate` (run by pre-commit hooks over a catalogue)
stay instant because they import no database, HTTP, Slack, web-server or metrics library; the commands
that read the database load Alembic only when the schema is not current (an upgrade to run, or a
sentence to say), and no library of the bot's serving side.

Not timed, so not flaky: each case runs the real command in a fresh interpreter and lists the modules
it imported; one heavy import at the top of a module on the way fails the test wherever it runs.
`bench/startup.py` measures the seconds.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.catalogue.helpers import EXAMPLE_ENV

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))
COMMANDS = ["validate", "apply", "check", "replay", "run", "demo", "status", "db", "db upgrade"]
# the libraries of `run` and of the commands that query sources
SERVING = {"httpx", "slack_bolt", "slack_sdk", "uvicorn", "starlette", "anyio", "apscheduler"}
METRICS = {"prometheus_client"}
# Alembic, and the template and highlighting libraries its machinery loads (pygments when installed)
MIGRATING = {"alembic", "mako", "pygments"}
SITE_PACKAGES = tuple({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
# Runs the command as `python -m bot` does, then writes every module loaded and the file it came from.
PROBE = """\
import atexit, json, os, runpy, sys
def dump():
    with open(os.environ["SLO_BOT_MODULES_OUT"], "w") as out:
        json.dump({name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}, out)
atexit.register(dump)
if len(sys.argv) > 1:
    runpy.run_module("bot", run_name="__main__", alter_sys=True)
"""


def modules(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """The command's exit code, and every module it imported with its file (beyond the interpreter's
    own, and those without a file)."""

    def loaded(*args: str) -> tuple[int, dict[str, str]]:
        out = tmp_path / "modules.json"
        environ = {**os.environ, **(env or {}), "SLO_BOT_MODULES_OUT": str(out)}
        environ.pop("SLO_BOT_CONFIG", None)
        result = subprocess.run(
            [sys.executable, "-c", PROBE, *args], cwd=ROOT, env=environ, capture_output=True, check=False
        )
        files = json.loads(out.read_text())
        return result.returncode, {name: file for name, file in files.items() if file}

    _, interpreter = loaded()  # what the interpreter's site hooks load in every process
    code, found = loaded(*argv)
    return code, {name: file for name, file in found.items() if name not in interpreter}


def libraries(
    tmp_path: Path, *argv: str, env: dict[str, str] | None = None, whole: bool = False
) -> tuple[int, set[str]]:
    """The command's exit code, and the installed packages it imported (top-level names, or with
    `whole` every module's full name)."""
    code, found = modules(tmp_path, *argv, env=env)
    return code, {
        name if whole else name.split(".")[0]
        for name, file in found.items()
        if file.startswith(SITE_PACKAGES)
    }


@pytest.mark.parametrize("command", [[], *[c.split() for c in COMMANDS]], ids=["-", *COMMANDS])
def test_help_loads_no_library_beyond_the_standard_one(tmp_path: Path, command: list[str]) -> None:
    code, loaded = libraries(tmp_path, *command, "--help")
    assert code == 0
    assert loaded == set()


def test_validate_loads_only_the_yaml_and_promql_parsers(tmp_path: Path) -> None:
    code, loaded = libraries(tmp_path, "validate", *EXAMPLES, env=EXAMPLE_ENV)
    assert code == 0
    assert loaded <= {"yaml", "promql_parser"}, "validate checks files: it needs no other library"


def test_status_loads_the_database_and_nothing_of_the_bot_or_its_sources(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'slo-bot.db'}"}
    code, found = modules(tmp_path, "status", env=env)
    assert code == 1  # no database file yet: "run `slo-bot db upgrade`"
    loaded = {name.split(".")[0] for name, file in found.items() if file.startswith(SITE_PACKAGES)}
    assert "sqlalchemy" in loaded
    assert not loaded & (MIGRATING | SERVING | METRICS), "no schema to check in an absent file"
    assert "bot.store.models" not in found, "no table to read: it says so before building them"

    assert libraries(tmp_path, "apply", str(ROOT / "examples" / "checkout.yaml"), env=env)[0] == 0
    code, loaded = libraries(tmp_path, "status", "--json", env=env)
    assert code == 0
    assert "sqlalchemy" in loaded  # it read the database, and nothing else
    assert not loaded & (MIGRATING | SERVING | METRICS), "a current schema is seen without Alembic"
    assert "yaml" not in loaded, "stored definitions are JSON: the YAML parser is for files"


def test_a_database_behind_the_code_loads_alembic_and_a_current_one_does_not(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'slo-bot.db'}"}
    catalogue = str(ROOT / "examples" / "checkout.yaml")
    code, loaded = libraries(tmp_path, "apply", catalogue, env=env)
    assert code == 0
    assert "alembic" in loaded, "a new database is migrated first"

    code, loaded = libraries(tmp_path, "apply", catalogue, env=env)
    assert code == 0
    assert not loaded & (MIGRATING | SERVING | METRICS), "apply stores rows: no migration, no metrics"
    code, loaded = libraries(tmp_path, "db", "upgrade", env=env)
    assert code == 0
    assert not loaded & MIGRATING, "nothing to upgrade"

    with sqlite3.connect(tmp_path / "slo-bot.db") as connection:  # as if the code had a newer migration
        connection.execute("UPDATE alembic_version SET version_num = '0001'")
    code, loaded = libraries(tmp_path, "status", env=env)
    assert code == 1  # "run `slo-bot db upgrade`"
    assert "alembic" in loaded, "the revisions between are Alembic's to know"


def test_check_in_console_mode_loads_no_slack_server_or_scheduler(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'slo-bot.db'}", "SLO_BOT_EVAL_INTERVAL": "1m"}
    assert libraries(tmp_path, "apply", str(ROOT / "examples" / "checkout.yaml"), env=env)[0] == 0
    code, modules = libraries(tmp_path, "check", "--slo", "search-availability", env=env, whole=True)
    assert code == 0
    loaded = {name.split(".")[0] for name in modules}
    assert "httpx" in loaded  # the source pool
    assert not loaded & (SERVING - {"httpx"})
    # (httpx loads pygments for its own command line when it is installed)
    assert not loaded & (MIGRATING - {"pygments"}), "the schema is current"
    assert "matplotlib" not in loaded and "numpy" not in loaded  # charts load it when one is drawn
    assert "sqlalchemy.dialects.sqlite" in modules  # its upserts (leases, readings) on SQLite...
    assert "sqlalchemy.dialects.postgresql" not in modules  # ...and not PostgreSQL's
