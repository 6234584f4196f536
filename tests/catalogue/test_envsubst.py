"""`${NAME}` substitution: secrets come from the environment and never sit in the stored documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.catalogue import CatalogueError, build_slos, load_paths
from bot.catalogue.envsubst import MALFORMED, substitute
from tests.catalogue.helpers import lines

ENV = {"HOST": "prom", "PORT": "9090", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "result", "errors"),
    [
        ("plain", "plain", []),
        ("http://${HOST}:${PORT}/", "http://prom:9090/", []),
        ("${EMPTY}", "", []),
        ("$${HOST}", "${HOST}", []),
        ("$$${HOST}", "$${HOST}", []),  # a lone $, then an escaped ${
        ("cost: $5 ${HOST}", "cost: $5 prom", []),
        ("${MISSING}", "${MISSING}", ["environment variable MISSING is not set"]),
        ("${HOST", "${HOST", [MALFORMED]),
        ("${1X}", "${1X}", [MALFORMED]),
        ("{{window}} {{.window}}", "{{window}} {{.window}}", []),
    ],
)
def test_substitute(text: str, result: str, errors: list[str]) -> None:
    assert substitute(text, ENV) == (result, errors)


CATALOGUE = """\
apiVersion: openslo/v1
kind: DataSource
metadata:
  name: prom
  annotations:
    team.example/owner: ${HOST}-team
spec:
  type: Prometheus
  connectionDetails:
    url: http://${HOST}:${PORT}
    headers:
      Authorization: Bearer ${TOKEN}
      X-${HOST}: keys stay as written
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api}
spec:
  service: api
  indicator:
    metadata: {name: api-requests}
    spec:
      ratioMetric:
        good: {metricSource: {metricSourceRef: prom, spec: {query: 'up{price="$${5}"}'}}}
        total: {metricSource: {metricSourceRef: prom, spec: {query: up}}}
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""


def test_catalogue_strings_are_substituted_but_documents_keep_the_text(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(CATALOGUE)
    catalogue = load_paths([file], {**ENV, "TOKEN": "s3cret"})
    assert catalogue.problems == ()
    (entry,) = catalogue.entries
    good = entry.slo.indicator.good
    assert good is not None
    assert good.query == 'up{price="${5}"}'
    assert good.source.connection == {
        "url": "http://prom:9090",
        "headers": {"Authorization": "Bearer s3cret", "X-${HOST}": "keys stay as written"},
    }
    stored = json.dumps(entry.documents)
    assert "s3cret" not in stored
    assert "Bearer ${TOKEN}" in stored and "$${5}" in stored
    assert entry.slo.indicator.good.source.name == "prom"
    assert entry.documents[1]["metadata"]["annotations"] == {"team.example/owner": "${HOST}-team"}


def test_unset_variable_is_a_problem_at_its_line(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(CATALOGUE)
    catalogue = load_paths([file], ENV)
    assert lines(catalogue) == [
        f"{file}:12: spec.connectionDetails.headers.Authorization: environment variable TOKEN is not set"
    ]
    assert catalogue.entries == ()


def test_env_defaults_to_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(CATALOGUE)
    for name, value in {**ENV, "TOKEN": "from-os"}.items():
        monkeypatch.setenv(name, value)
    (entry,) = load_paths([file]).entries
    assert entry.slo.indicator.total is not None
    assert entry.slo.indicator.total.source.connection["headers"]["Authorization"] == "Bearer from-os"


def test_stored_documents_substitute_afresh(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(CATALOGUE)
    (entry,) = load_paths([file], {**ENV, "TOKEN": "old"}).entries
    documents = json.loads(json.dumps(entry.documents))
    (slo,) = build_slos(documents, {**ENV, "TOKEN": "rotated"})
    assert slo.indicator.total is not None
    assert slo.indicator.total.source.connection["headers"]["Authorization"] == "Bearer rotated"
    with pytest.raises(CatalogueError) as caught:
        build_slos(documents, ENV)
    assert [str(p) for p in caught.value.problems] == [
        "<stored>:0: spec.connectionDetails.headers.Authorization: environment variable TOKEN is not set"
    ]
