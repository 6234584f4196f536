"""Typed reads from parsed YAML that report what is wrong, and where, instead of raising."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from bot.catalogue.model import Problem, Report
from bot.catalogue.origins import Doc, Path
from bot.durations import parse_duration

MISSING = "required field missing"
NAME_RULE = "use at most 63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_ZERO = re.compile(r"^0+[smhdwMQY]?$")


def describe(value: Any) -> str:
    """How a value reads in a message: `a number (42)`, `a list`, ..."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_name(value: str) -> bool:
    return len(value) <= 63 and _NAME.match(value) is not None


def report_at(report: Report, doc: Doc, path: Path, message: str) -> None:
    line, shown = doc.locate(path)
    report.add(Problem(doc.file, line, shown, message), doc)


class Checker:
    """Reads one document. Every getter returns None when the value is absent or wrong."""

    def __init__(self, report: Report, doc: Doc) -> None:
        self.report = report
        self.doc = doc
        self.count = 0  # problems found so far in this document

    def fail(self, path: Path, message: str) -> None:
        self.count += 1
        report_at(self.report, self.doc, path, message)

    def mapping(
        self, value: Any, path: Path, allowed: Collection[str] | None = None
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {describe(value)}")
            return None
        if allowed is not None:
            self.only(value, path, allowed)
        return value

    def only(self, mapping: dict[str, Any], path: Path, allowed: Collection[str]) -> None:
        """Reports every key outside `allowed`."""
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(sorted(allowed))
                self.fail((*path, key), f"unknown field ({hint})")

    def get(self, mapping: dict[str, Any], key: str, path: Path, required: bool) -> Any:
        value = mapping.get(key)
        if value is None and required:
            self.fail((*path, key), MISSING if key not in mapping else f"{MISSING} (empty value)")
        return value

    def get_map(
        self,
        mapping: dict[str, Any],
        key: str,
        path: Path,
        *,
        allowed: Collection[str] | None = None,
        required: bool = False,
    ) -> dict[str, Any] | None:
        value = self.get(mapping, key, path, required)
        return None if value is None else self.mapping(value, (*path, key), allowed)

    def get_list(
        self, mapping: dict[str, Any], key: str, path: Path, *, required: bool = False
    ) -> list[Any] | None:
        value = self.get(mapping, key, path, required)
        if value is None or isinstance(value, list):
            return value
        self.fail((*path, key), f"expected a list, got {describe(value)}")
        return None

    def get_str(self, mapping: dict[str, Any], key: str, path: Path, *, required: bool = False) -> str | None:
        value = self.get(mapping, key, path, required)
        if value is None or isinstance(value, str):
            if required and value is not None and not value.strip():
                self.fail((*path, key), "must not be empty")
                return None
            return value
        self.fail((*path, key), f"expected a string, got {describe(value)}")
        return None

    def get_number(
        self, mapping: dict[str, Any], key: str, path: Path, *, required: bool = False
    ) -> float | None:
        value = self.get(mapping, key, path, required)
        if value is None:
            return None
        if is_number(value):
            return float(value)
        self.fail((*path, key), f"expected a number, got {describe(value)}")
        return None

    def get_bool(
        self, mapping: dict[str, Any], key: str, path: Path, *, required: bool = False
    ) -> bool | None:
        value = self.get(mapping, key, path, required)
        if value is None or isinstance(value, bool):
            return value
        self.fail((*path, key), f"expected true or false, got {describe(value)}")
        return None

    def get_name(
        self, mapping: dict[str, Any], key: str, path: Path, *, required: bool = False
    ) -> str | None:
        value = self.get_str(mapping, key, path, required=required)
        if value is None or is_name(value):
            return value
        self.fail((*path, key), f"invalid name {value!r}: {NAME_RULE}")
        return None

    def get_duration(
        self,
        mapping: dict[str, Any],
        key: str,
        path: Path,
        *,
        required: bool = False,
        zero_ok: bool = False,
    ) -> tuple[str, timedelta] | None:
        """A duration shorthand (`5m`, `28d`, `1M`) as written, and its length."""
        text = self.get_str(mapping, key, path, required=required)
        if text is None:
            return None
        if zero_ok and _ZERO.match(text.strip()):
            return text, timedelta(0)
        try:
            return text, parse_duration(text)
        except ValueError as err:
            self.fail((*path, key), str(err))
            return None
