"""Catalogue files in, SLOs and problems out: the two entry points of the package."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.catalogue.adjustments import is_adjustment, parse_adjustments
from bot.catalogue.checks import Checker
from bot.catalogue.model import Catalogue, CatalogueError, Problem, Report
from bot.catalogue.origins import Doc
from bot.catalogue.resolve import compile_documents
from bot.catalogue.sloth import (
    DATASOURCE,
    convert,
    datasource_name,
    is_sloth,
    prometheus_datasource,
)
from bot.domain import SLO

STORED = "<stored>"  # the file name of problems in documents read back from the store
_SUFFIXES = (".yaml", ".yml")


def load_paths(paths: Sequence[str | Path], env: Mapping[str, str] | None = None) -> Catalogue:
    """Reads files and directories (every *.yaml and *.yml inside, recursively, in name order).

    Never raises for bad input: whatever is wrong becomes a Problem. `env` defaults to os.environ.
    """
    from bot.catalogue import yamlsource  # PyYAML: files only (stored definitions are JSON)

    env = os.environ if env is None else env
    report = Report()
    files: list[str] = []
    order: dict[str, int] = {}
    docs: list[Doc] = []
    for file in _expand(paths, report, order):
        text = _read(file, report)
        if text is None:
            continue
        files.append(str(file))
        found, problems = yamlsource.parse_documents(text, str(file))
        for problem in problems:
            report.add(problem)
        if not found and not problems:
            report.add(Problem(str(file), 0, "-", "no YAML documents in this file"))
        docs.extend(found)
    adjustments = [doc for doc in docs if is_adjustment(doc.raw)]
    docs = [doc for doc in docs if not is_adjustment(doc.raw)]
    entries = compile_documents(_openslo(docs, env, report), env, report)
    windows = parse_adjustments(adjustments, entries, report)
    problems = sorted(report.problems, key=lambda p: (order.get(p.file, -1), p.line))
    return Catalogue(tuple(entries), tuple(problems), tuple(files), tuple(windows))


def build_slos(documents: Sequence[Mapping[str, Any]], env: Mapping[str, str] | None = None) -> list[SLO]:
    """Rebuilds the SLO(s) of an Entry from its stored documents, substituting `${NAME}` afresh.

    Raises CatalogueError (file `<stored>`, line 0) when they no longer build, e.g. when a
    variable is now unset.
    """
    env = os.environ if env is None else env
    report = Report()
    docs = [Doc(STORED, _plain(document)) for document in documents]
    entries = compile_documents(_openslo(docs, env, report), env, report)
    if report.problems:
        raise CatalogueError(report.problems)
    return [entry.slo for entry in entries]


def _openslo(docs: list[Doc], env: Mapping[str, str], report: Report) -> list[Doc]:
    """Sloth documents replaced by the OpenSLO documents they stand for."""
    out: list[Doc] = []
    sloth: list[Doc] = []
    for doc in docs:
        if is_sloth(doc.raw):
            sloth.append(doc)
            out.extend(convert(Checker(report, doc)))
        else:
            out.append(doc)
    if sloth and not any(datasource_name(doc.raw) == DATASOURCE for doc in out):
        out.append(prometheus_datasource(env, sloth[0]))
    return out


def _expand(paths: Sequence[str | Path], report: Report, order: dict[str, int]) -> list[Path]:
    """The files to read, once each; `order` gets the position of every name problems may carry."""
    files: list[Path] = []
    seen: set[str] = set()
    for given in paths:
        path = Path(given)
        order.setdefault(str(path), len(order))
        try:
            if path.is_dir():
                found = _catalogue_files(path)
                if not found:
                    report.add(Problem(str(path), 0, "-", "no *.yaml or *.yml files in this directory"))
            elif path.exists():
                found = [path]
            else:
                report.add(Problem(str(path), 0, "-", "no such file or directory"))
                continue
        except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
            report.add(Problem(str(path), 0, "-", f"cannot read: {err}"))
            continue
        for file in found:
            key = os.path.realpath(file)
            if key not in seen:
                seen.add(key)
                files.append(file)
                order.setdefault(str(file), len(order))
    return files


def _catalogue_files(directory: Path) -> list[Path]:
    """Every *.yaml and *.yml below `directory`, sorted; hidden files and directories (.git) left out.

    os.walk does not follow symbolic links to directories, so a link loop cannot trap it.
    """
    found: list[Path] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root, n) for n in names if n.endswith(_SUFFIXES) and not n.startswith("."))
    return sorted(found)


def _read(file: Path, report: Report) -> str | None:
    try:
        data = file.read_bytes()
    except OSError as err:
        report.add(Problem(str(file), 0, "-", f"cannot read: {err.strerror or err}"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        message = f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})"
        report.add(Problem(str(file), line, "-", message))
        return None


def _plain(value: Any) -> Any:
    """A JSON-like copy: mappings become dicts, sequences lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
