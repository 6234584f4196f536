"""What loading a catalogue gives back: the SLOs built, and every problem found at its line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain import SLO


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a catalogue file. `line` is 1-based; 0 means the whole file."""

    file: str
    line: int
    path: str  # `spec.objectives[0].target`; `-` for the whole document, `yaml` for syntax errors
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


class CatalogueError(Exception):
    """Definitions that cannot be built. `str(err)` is one line per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid SLO catalogue")


@dataclass(frozen=True)
class Entry:
    """One SLO and the OpenSLO documents it was built from.

    `documents` hold the text as written (`${NAME}` not substituted), as JSON-serialisable values:
    the SLO document first, then every document it refers to. `build_slos` rebuilds the SLO
    from them.
    """

    slo: SLO
    documents: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[Entry, ...]
    problems: tuple[Problem, ...]
    files: tuple[str, ...]  # the YAML files read
    adjustments: tuple[Any, ...] = ()  # `AdjustmentEntry`s: the maintenance windows declared


class Report:
    """Collects problems once each, and remembers which documents had any."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._seen: set[Problem] = set()
        self.bad: set[object] = set()  # documents with at least one problem

    def add(self, problem: Problem, source: object | None = None) -> None:
        if source is not None:
            self.bad.add(source)
        if problem not in self._seen:
            self._seen.add(problem)
            self.problems.append(problem)
