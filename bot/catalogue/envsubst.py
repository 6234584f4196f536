"""`${NAME}` in catalogue strings becomes the environment variable NAME; `$${` keeps a literal `${`.

Secrets never sit in YAML: an unset variable is a problem, never an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from bot.catalogue.origins import Path

_TOKEN = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)\})?")
MALFORMED = "malformed variable reference: write ${NAME}, or $${ for a literal ${"


def substitute(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """The text with every variable replaced, and a message per variable that could not be."""
    errors: list[str] = []

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        name = match.group(1)
        if name is None:
            errors.append(MALFORMED)
        elif name not in env:
            errors.append(f"environment variable {name} is not set")
        else:
            return env[name]
        return token

    return _TOKEN.sub(replace, text), errors


def substitute_tree(
    value: Any, env: Mapping[str, str], on_error: Callable[[Path, str], None], path: Path = ()
) -> Any:
    """A copy of `value` with every string substituted (mapping keys stay as written)."""
    if isinstance(value, str):
        text, errors = substitute(value, env)
        for error in errors:
            on_error(path, error)
        return text
    if isinstance(value, dict):
        return {k: substitute_tree(v, env, on_error, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_tree(v, env, on_error, (*path, i)) for i, v in enumerate(value)]
    return value
