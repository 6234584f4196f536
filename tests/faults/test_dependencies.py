"""Installs are declared and reproducible: every library bot/ imports is a dependency of its own in
pyproject.toml (not there by luck, through another package), and the constraints file pins them all."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _imported_top_levels(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"bot", "migrations", "__future__"}


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def test_every_library_bot_imports_is_declared() -> None:
    declared = {_name(r) for r in _project()["dependencies"]}  # type: ignore[attr-defined]
    by_module = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(_imported_top_levels(ROOT / "bot") | _imported_top_levels(ROOT / "migrations")):
        distributions = {_name(d) for d in by_module.get(module, [module])}
        if not distributions & declared:
            missing[module] = sorted(distributions)
    assert missing == {}, f"imported by bot/ but not in pyproject.toml dependencies: {missing}"


def test_the_constraints_file_pins_every_declared_dependency() -> None:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pinned = {_name(line): line for line in lines if line and not line.startswith(("#", " "))}
    assert all("==" in line for line in pinned.values()), [p for p in pinned.values() if "==" not in p]
    project = _project()
    wanted = {_name(r) for r in project["dependencies"]}  # type: ignore[attr-defined]
    wanted |= {_name(r) for r in project["optional-dependencies"]["dev"]}  # type: ignore[index]
    assert wanted - set(pinned) == set(), "run `make lock`: constraints.txt is behind pyproject.toml"
