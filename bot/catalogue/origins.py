"""A catalogue document with the line of each of its paths, so a problem names its line.

Apart from the YAML parser (`bot.catalogue.yamlsource`) that makes them from files: stored definitions
are rebuilt from JSON, and commands that only read the database do not load PyYAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]
Origins = dict[Path, tuple[int, str | None]]  # path -> (1-based line, path as shown, if not the path)


def format_path(path: Path) -> str:
    """`("spec", "objectives", 0, "target")` -> `spec.objectives[0].target`; `()` -> `-`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "-"


@dataclass(eq=False)
class Doc:
    """One document: `raw` as written, `data` after `${NAME}` substitution."""

    file: str
    raw: Any
    data: Any = None
    origins: Origins = field(default_factory=dict)

    def locate(self, path: Path) -> tuple[int, str]:
        """The line of `path` (or of its nearest ancestor in the file) and the path to show."""
        for size in range(len(path), -1, -1):
            origin = self.origins.get(path[:size])
            if origin is not None:
                line, shown = origin
                return line, format_path(path) if shown is None else shown
        return 0, format_path(path)
