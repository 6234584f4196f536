"""Files, directories and whatever bytes they hold: every mistake is a problem, never an exception."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from bot.catalogue import load_paths, yamlsource
from tests.catalogue.helpers import BASE, EXAMPLE_ENV, EXAMPLES, lines

SERVICE = "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: %s}\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", ":0: -: no YAML documents in this file"),
        (b"# only a comment\n", ":0: -: no YAML documents in this file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ":1: -: not UTF-8 text (byte 0x89 at offset 0)"),
        (b"a: 1\nb: \x00\n", ":2: yaml: not YAML text: unacceptable character '\\x00'"),
        (b"- a\n- b\n", ":1: -: expected an OpenSLO document (a mapping), got a string ('a')"),
        (b"just some words\n", ":1: -: expected an OpenSLO document (a mapping), got a string"),
        (b"42\n", ":1: -: expected an OpenSLO document (a mapping), got a number (42)"),
        (b"a: [1, 2\nb: 3\n", ":2: yaml: YAML syntax error: expected ',' or ']', but got ':'"),
        (b"a: 1\n\tb: 2\n", ":2: yaml: YAML syntax error: found character '\\t'"),
        (b"kind: !Ref x\n", ":1: kind: unsupported YAML tag '!Ref'"),
        (b"? [a, b]\n: 1\n", ":1: -: mapping keys must be plain strings"),
        (b"a: &x [*x]\n", ":1: a[0]: recursive YAML alias"),
    ],
    ids=[
        "empty",
        "comment",
        "binary",
        "nul",
        "list",
        "scalar",
        "number",
        "syntax",
        "tab",
        "tag",
        "complex-key",
        "recursive-alias",
    ],
)
def test_garbage_becomes_problems(tmp_path: Path, content: bytes, expected: str) -> None:
    file = tmp_path / "junk.yaml"
    file.write_bytes(content)
    catalogue = load_paths([file], {})
    assert any(p.startswith(f"{file}{expected}") for p in lines(catalogue)), lines(catalogue)
    assert catalogue.entries == ()


# Scalars of every kind, anchors and aliases, flow and block styles, a tag and a complex key (problems
# of the builder), several documents, and a stream written as one list of documents.
ODD_YAML = """\
a: &anchor {x: 1, "y": [2, 3.5, 1e3, .inf, null, ~, true, no, 0x1F, 0o17, 2026-11-30, 12:30:00]}
b: *anchor
c: |
  a block
  of text
d: >-
  folded
  text
e: !Ref x
? [k, l]
: 1
---
- {kind: Service, metadata: {name: one}}
- kind: Service
  metadata:
    name: two
---
# only a comment
"""


def test_libyaml_and_the_pure_python_parser_give_the_same_values_and_lines(monkeypatch) -> None:
    """Catalogues are read with libyaml for speed: every value, line and problem must be what the
    pure-Python parser gives."""
    assert yamlsource._FAST_LOADER is yaml.CSafeLoader  # PyYAML's wheels have it: the path users take
    texts = {path.name: path.read_text() for path in sorted(EXAMPLES.glob("*.yaml"))}
    texts["odd.yaml"] = ODD_YAML

    def read() -> dict[str, object]:
        parsed = {name: yamlsource.parse_documents(text, name) for name, text in texts.items()}
        return {
            name: ([(d.raw, d.origins) for d in docs], problems) for name, (docs, problems) in parsed.items()
        }

    fast = read()
    monkeypatch.setattr(yamlsource, "_FAST_LOADER", None)
    assert fast == read()
    assert fast["odd.yaml"][1], "the builder's problems are compared too"


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    file = tmp_path / "bomb.yaml"
    file.write_text("\n".join(levels) + "\n")
    assert lines(load_paths([file], {})) == [f"{file}:1: -: document too large (too many nodes or aliases)"]


def test_syntax_error_keeps_the_documents_before_it(tmp_path: Path) -> None:
    file = tmp_path / "two.yaml"
    file.write_text(BASE + "---\n" + SERVICE % "shop" + "---\nkind: [\n")
    catalogue = load_paths([file], {})
    assert len(lines(catalogue)) == 1
    assert lines(catalogue)[0].startswith(f"{file}:38: yaml: YAML syntax error")


def test_missing_file_is_line_zero(tmp_path: Path) -> None:
    catalogue = load_paths([tmp_path / "nope.yaml"], {})
    assert lines(catalogue) == [f"{tmp_path / 'nope.yaml'}:0: -: no such file or directory"]
    assert catalogue.files == ()


def test_directory_is_read_recursively_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b" / "c.yml").write_text(SERVICE % "c")
    (tmp_path / "a.yaml").write_text(SERVICE % "a")
    (tmp_path / "notes.txt").write_text("not: [yaml")
    (tmp_path / ".git" / "x.yaml").write_text("not: [yaml")
    (tmp_path / ".#a.yaml").write_text("not: [yaml")
    (tmp_path / "b" / "loop").symlink_to(tmp_path, target_is_directory=True)
    catalogue = load_paths([tmp_path], {})
    assert catalogue.files == (str(tmp_path / "a.yaml"), str(tmp_path / "b" / "c.yml"))
    assert catalogue.problems == ()


def test_unusable_path_is_a_problem() -> None:
    (problem,) = load_paths(["bad\x00name.yaml"], {}).problems
    assert (problem.file, problem.line, problem.path) == ("bad\x00name.yaml", 0, "-")


def test_empty_directory_is_a_problem(tmp_path: Path) -> None:
    assert lines(load_paths([tmp_path], {})) == [
        f"{tmp_path}:0: -: no *.yaml or *.yml files in this directory"
    ]


def test_a_file_given_twice_is_read_once(tmp_path: Path) -> None:
    file = tmp_path / "a.yaml"
    file.write_text(SERVICE % "a")
    catalogue = load_paths([file, tmp_path, str(file)], {})
    assert catalogue.files == (str(file),)
    assert catalogue.problems == ()


def test_references_work_across_files(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(BASE)
    (tmp_path / "slos.yaml").write_text(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: s}\nspec:\n  service: shop\n"
        "  indicatorRef: requests\n  budgetingMethod: Occurrences\n  objectives: [{target: 0.9}]\n"
        "  alertPolicies: [{alertPolicyRef: page}]\n"
    )
    catalogue = load_paths([tmp_path / "slos.yaml", tmp_path / "sources.yaml"], {})
    assert catalogue.problems == ()
    (entry,) = catalogue.entries
    assert entry.slo.indicator.good is not None
    assert entry.slo.indicator.good.source.type == "Simulated"
    assert [p.name for p in entry.slo.alert_policies] == ["page"]
    kinds = [d["kind"] for d in entry.documents]
    assert kinds == ["SLO", "SLI", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"]


def test_problems_come_in_file_then_line_order(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("apiVersion: x\nkind: Service\nmetadata: {name: b}\n")
    (tmp_path / "a.yaml").write_text(
        "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: B}\n---\nkind: Nope\n"
    )
    catalogue = load_paths([tmp_path / "b.yaml", tmp_path / "nope", tmp_path / "a.yaml"], {})
    assert [(Path(p.file).name, p.line) for p in catalogue.problems] == [
        ("b.yaml", 1),
        ("nope", 0),
        ("a.yaml", 3),
        ("a.yaml", 5),
        ("a.yaml", 5),
    ]


def test_line_numbers_follow_merge_keys_and_anchors(tmp_path: Path) -> None:
    file = tmp_path / "anchors.yaml"
    file.write_text(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: s}\nspec:\n"
        "  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - &base {target: 0.9}\n    - <<: *base\n      displayName: x\n"
        "      target: 2\n"
    )
    catalogue = load_paths([file], {})
    assert f"{file}:12: spec.objectives[1].target: target must be at least 0" in "\n".join(lines(catalogue))


def _mutate(text: str, rng: random.Random) -> str:
    rows = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(rows))
        action = rng.randrange(6)
        if action == 0:
            del rows[i]
        elif action == 1:
            rows.insert(i, rows[rng.randrange(len(rows))])
        elif action == 2:
            rows[i] = rows[i][: rng.randrange(len(rows[i]) + 1)]
        elif action == 3:
            rows[i] = " " * rng.randint(0, 6) + rows[i].lstrip()
        elif action == 4:
            j = rng.randrange(len(rows[i]) + 1)
            rows[i] = (
                rows[i][:j] + rng.choice(["[", "{", ":", "-", "${X}", "*a", "&a", "!!int", "'"]) + rows[i][j:]
            )
        else:
            rows[i] = rows[i].replace(
                rng.choice(["true", "1", "0.9", "m", "d", "s"]), rng.choice(["", "x", "-1"])
            )
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("example", ["checkout.yaml", "incidents.yaml", "prometheus.yaml", "sloth.yaml"])
def test_mangled_examples_never_raise(tmp_path: Path, example: str) -> None:
    text = (EXAMPLES / example).read_text()
    rng = random.Random(example)
    for n in range(150):
        file = tmp_path / f"{n}.yaml"
        file.write_text(_mutate(text, rng))
        catalogue = load_paths([file], EXAMPLE_ENV)
        for problem in catalogue.problems:
            assert problem.line >= 0 and problem.path and problem.message
