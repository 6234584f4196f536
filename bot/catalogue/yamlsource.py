"""YAML documents with the line of every mapping key and sequence item, so a problem names its line.

Values come out as JSON types only (dict, list, str, int, float, bool, None): timestamps and other
exotic scalars stay the text they were written as.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.catalogue.model import Problem
from bot.catalogue.origins import Doc, Origins, Path, format_path

_STD = "tag:yaml.org,2002:"
_MAX_NODES = 200_000  # a guard against alias bombs, far above any real catalogue
_SCALARS = SafeConstructor()
# libyaml's parser, when PyYAML has it (its wheels do): a 200-SLO catalogue is composed in 0.03 s
# instead of 0.5 s. A stream it refuses is read again by the pure-Python one, for its messages.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)
_EXPONENT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+$")


def parse_documents(text: str, file: str) -> tuple[list[Doc], list[Problem]]:
    """Every non-empty document of a YAML stream. A syntax error ends the stream with a problem."""
    if _FAST_LOADER is not None:
        docs: list[Doc] = []
        problems: list[Problem] = []
        try:
            _compose(text, file, _FAST_LOADER, docs, problems)
            return docs, problems
        except yaml.YAMLError:
            pass  # read again below: the pure-Python parser says what it expected, and where
    docs, problems = [], []
    try:
        _compose(text, file, yaml.SafeLoader, docs, problems)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = err.problem or err.context or "invalid YAML"
        if err.context and err.problem:
            what = f"{err.problem} ({err.context})"
        # An error at the end of the stream is reported on the last line, not one past it.
        line = min(mark.line + 1, max(len(text.splitlines()), 1)) if mark else 0
        problems.append(Problem(file, line, "yaml", f"YAML syntax error: {what}"))
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        problems.append(
            Problem(file, line, "yaml", f"not YAML text: unacceptable character {_char(err.character)!r}")
        )
    except yaml.YAMLError as err:  # no position known
        problems.append(Problem(file, 0, "yaml", f"YAML error: {err}"))
    return docs, problems


def _compose(text: str, file: str, loader: Any, docs: list[Doc], problems: list[Problem]) -> None:
    """Append the documents of `text` to `docs` as they are read; a YAML error stops the reading."""
    for node in yaml.compose_all(text, Loader=loader):
        if node is None:
            continue
        builder = _Builder()
        try:
            data = builder.build(node, ())
        except _TooBig:
            problems.append(Problem(file, _line(node), "-", "document too large (too many nodes or aliases)"))
            continue
        problems.extend(Problem(file, line, path, msg) for line, path, msg in builder.problems)
        if isinstance(data, list):
            docs.extend(_listed(file, data, builder.origins))
        elif data is not None:
            docs.append(Doc(file, data, origins=builder.origins))


def _listed(file: str, items: list[Any], origins: Origins) -> list[Doc]:
    """A stream that is one list of documents (as the OpenSLO SDKs write it): one Doc per item, each
    with the lines of its own paths."""
    docs: list[Doc] = []
    for i, item in enumerate(items):
        own = {path[1:]: origin for path, origin in origins.items() if path[:1] == (i,)}
        docs.append(Doc(file, item, origins=own))
    return docs


class _TooBig(Exception):
    pass


def _char(character: object) -> str:
    return chr(character) if isinstance(character, int) else str(character)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _Builder:
    """Turns a composed node tree into plain values, noting the line of every path."""

    def __init__(self) -> None:
        self.origins: Origins = {}
        self.problems: list[tuple[int, str, str]] = []
        self._nodes = 0
        self._open: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def build(self, node: Node, path: Path) -> Any:
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise _TooBig
        self.origins.setdefault(path, (_line(node), None))
        if not node.tag.startswith(_STD) and node.tag != "!":
            self._problem(node, path, f"unsupported YAML tag '{node.tag}'")
        if isinstance(node, ScalarNode):
            return _scalar(node)
        if id(node) in self._open:
            self._problem(node, path, "recursive YAML alias")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            return None
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        explicit: dict[str, Any] = {}
        # Merges first, so the lines of keys written here win over those of the merged anchor.
        for key_node, value_node in node.value:
            if key_node.tag != _STD + "merge":
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                value = self.build(source, path)
                if not isinstance(value, dict):
                    self._problem(source, path, "a merge key (<<) needs a mapping")
                    continue
                for key, item in value.items():
                    merged.setdefault(key, item)
        for key_node, value_node in node.value:
            if key_node.tag == _STD + "merge":
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, path, "mapping keys must be plain strings")
                continue
            key = str(key_node.value)
            if key in explicit:
                self._problem(key_node, (*path, key), f"duplicate key '{key}'")
                continue
            self.origins[(*path, key)] = (_line(key_node), None)
            explicit[key] = self.build(value_node, (*path, key))
        return {**{k: v for k, v in merged.items() if k not in explicit}, **explicit}

    def _problem(self, node: Node, path: Path, message: str) -> None:
        self.problems.append((_line(node), format_path(path), message))


def _scalar(node: ScalarNode) -> Any:
    tag = node.tag
    try:
        if tag == _STD + "null":
            return None
        if tag == _STD + "bool":
            return _SCALARS.construct_yaml_bool(node)
        if tag == _STD + "int":
            return _SCALARS.construct_yaml_int(node)
        if tag == _STD + "float":
            return _SCALARS.construct_yaml_float(node)
        # a plain scalar's style is None from PyYAML's own parser, "" from libyaml's
        if tag == _STD + "str" and not node.style and _EXPONENT.match(node.value):
            return float(node.value)  # `1e-3`: a number in YAML 1.2 (and Go), a string to PyYAML
    except (ValueError, yaml.YAMLError):
        pass
    return str(node.value)
