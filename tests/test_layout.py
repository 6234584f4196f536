"""The places breaches are shown meet only in the breach store and `bot.conversation`: Slack's code
never imports the incident tools' code, nor theirs Slack's, nor either the console's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"
DESTINATIONS = {
    "bot.slack": BOT / "slack",
    "bot.incidents": BOT / "incidents",
    "bot.console": BOT / "console.py",
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(DESTINATIONS))
def test_a_destination_imports_no_other_destination(package: str) -> None:
    where = DESTINATIONS[package]
    files = sorted(where.glob("*.py")) if where.is_dir() else [where]
    others = [p for p in DESTINATIONS if p != package]
    crossing = {
        f"{path.relative_to(BOT.parent)} imports {name}"
        for path in files
        for name in _imports(path)
        if any(name == other or name.startswith(other + ".") for other in others)
    }
    assert not crossing, sorted(crossing)
