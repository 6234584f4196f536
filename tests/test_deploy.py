"""deploy/ and the Dockerfile as an operator relies on them, checked offline: every manifest valid for
the pinned Kubernetes release (its strict schema), three replicas probed on /healthz, a disruption
budget over their pods, secrets only through secretKeyRef, a catalogue `slo-bot validate` accepts,
a non-root image built from the lock file."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.catalogue.envsubst import substitute
from bot.durations import parse_duration
from bot.fleet import replica_name
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
# The oldest Kubernetes release the manifests promise to work on; its schema is bundled with the package.
KUBERNETES_VERSION = "1.32"
KUSTOMIZATION = "kustomization.yaml"
SECRET_EXAMPLE = "secret.example.yaml"  # applied once by hand, never by `kubectl apply -k`
# The credentials among slo-bot's variables: never a plain `value` in a manifest.
SECRET_VARIABLES = {
    "DATABASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "PAGERDUTY_WEBHOOK_SECRET",
    "OPSGENIE_WEBHOOK_TOKEN",
}
PLACEHOLDER = "REPLACE-ME"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("*.yaml") if p.name != KUSTOMIZATION)


def _objects() -> list[dict[str, Any]]:
    return [doc for path in _manifest_files() for doc in _documents(path)]


def _one(kind: str) -> dict[str, Any]:
    found = [doc for doc in _objects() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/, found {len(found)}"
    return found[0]


def _pod() -> dict[str, Any]:
    spec: dict[str, Any] = _one("Deployment")["spec"]["template"]["spec"]
    return spec


def _bot_container() -> dict[str, Any]:
    containers = _pod()["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _all_containers() -> list[dict[str, Any]]:
    return [*_pod().get("initContainers", []), *_pod()["containers"]]


def _port_number(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, named or numbered, as the container's port number."""
    for declared in container.get("ports", []):
        if port in (declared.get("name"), declared["containerPort"]):
            number: int = declared["containerPort"]
            return number
    raise AssertionError(f"port {port!r} is not one the container declares")


def test_manifests_are_found() -> None:
    names = {p.name for p in _manifest_files()}
    assert {"deployment.yaml", "poddisruptionbudget.yaml", "service.yaml", SECRET_EXAMPLE} <= names


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: p.name)
def test_every_manifest_is_valid_for_kubernetes(path: Path) -> None:
    documents = _documents(path)
    assert documents, f"{path.name} holds no object"
    for document in documents:
        # strict: an unknown or misspelt field (`readinessprobe`, `secretKeyref`) is an error too
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    kustomization = _documents(DEPLOY / KUSTOMIZATION)[0]
    expected = sorted(p.name for p in _manifest_files() if p.name != SECRET_EXAMPLE)
    assert sorted(kustomization["resources"]) == expected
    # the images every container names are the one the kustomization points at the registry
    images = {image["name"] for image in kustomization["images"]}
    assert {c["image"] for c in _all_containers()} <= images


def test_three_replicas_are_probed_on_healthz_at_the_port_the_bot_listens_on() -> None:
    assert _one("Deployment")["spec"]["replicas"] == 3
    container = _bot_container()
    args = container["args"]
    assert args[0] == "run"
    listens = int(args[args.index("--port") + 1])
    for probe in ("readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/healthz", probe
        assert _port_number(container, http["port"]) == listens, probe


def test_the_disruption_budget_keeps_two_of_the_deployments_three_pods() -> None:
    budget = _one("PodDisruptionBudget")["spec"]
    pod_labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = budget["selector"]["matchLabels"]
    assert selector and selector.items() <= pod_labels.items()
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 2


def test_the_service_reaches_the_pods_for_slack_and_prometheus() -> None:
    service = _one("Service")
    pod_labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector and selector.items() <= pod_labels.items()
    container = _bot_container()
    port = service["spec"]["ports"][0]
    listens = _port_number(container, port["targetPort"])
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == listens


class _Recorder(dict[str, str]):
    """An empty environment that notes every variable asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def _catalogue_variables() -> set[str]:
    """The `${NAME}`s the ConfigMap's catalogue reads from the environment."""
    recorder = _Recorder()
    for text in _one("ConfigMap")["data"].values():
        substitute(text, recorder)
    return recorder.asked


def _documented_variables() -> set[str]:
    """The variables of README's environment table (SPEC.md's, and those added since)."""
    names: set[str] = set()
    in_table = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| variable |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table:
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


def _string_literals_of_bot() -> set[str]:
    return {
        node.value
        for path in (ROOT / "bot").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _variables_slo_bot_reads() -> set[str]:
    """Documented, and named in slo-bot's code; Settings and the replica's name are asked for sure."""
    recorder = _Recorder()
    Settings.from_env(recorder)
    replica_name(recorder)
    documented = _documented_variables()
    assert recorder.asked <= documented, "README's environment table misses some"
    return documented & _string_literals_of_bot()


def test_every_variable_the_deployment_sets_is_one_slo_bot_reads() -> None:
    known = _variables_slo_bot_reads() | _catalogue_variables()
    assert {"DATABASE_URL", "SLO_BOT_CONFIG", "SLO_BOT_REPLICA", "SLO_BOT_LOG_FORMAT"} <= known
    for container in _all_containers():
        names = {variable["name"] for variable in container.get("env", [])}
        assert names - known == set(), f"{container['name']} sets variables slo-bot never reads"
        assert not container.get("envFrom"), "envFrom would set variables no one reviewed"


def test_the_replica_is_named_after_its_pod() -> None:
    env = {v["name"]: v for v in _bot_container()["env"]}
    assert env["SLO_BOT_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_credentials_come_from_the_secret_and_the_example_holds_only_placeholders() -> None:
    secret = _one("Secret")
    values: dict[str, str] = secret["stringData"]
    for container in _all_containers():
        for variable in container.get("env", []):
            if variable["name"] not in SECRET_VARIABLES:
                continue
            assert "value" not in variable, f"{variable['name']} written in plain text"
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in values, variable
    assert values["DATABASE_URL"].startswith("postgresql://")  # replicas share work through PostgreSQL
    assert {"DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} <= values.keys()
    for key, value in values.items():
        assert value == "" or PLACEHOLDER in value, f"{key} in {SECRET_EXAMPLE} is not a marked placeholder"


def test_the_configmap_catalogue_is_what_slo_bot_config_names_and_passes_validate(tmp_path: Path) -> None:
    configmap = _one("ConfigMap")
    container = _bot_container()
    env = {v["name"]: v for v in container["env"]}
    volumes = {v["name"]: v for v in _pod()["volumes"]}
    mounted = {
        m["mountPath"]: volumes[m["name"]]["configMap"]["name"]
        for m in container["volumeMounts"]
        if "configMap" in volumes[m["name"]]
    }
    assert mounted.get(env["SLO_BOT_CONFIG"]["value"]) == configmap["metadata"]["name"]

    for key, text in configmap["data"].items():
        (tmp_path / key).write_text(text)
    # the environment of the pod (its plain values; nothing of this machine's that the catalogue reads)
    environment = {k: v for k, v in os.environ.items() if k not in _catalogue_variables()}
    environment = {k: v for k, v in environment.items() if not k.startswith(("SLO_BOT_", "SLACK_"))}
    environment.update({name: v["value"] for name, v in env.items() if "value" in v})
    environment["SLO_BOT_CONFIG"] = str(tmp_path)
    environment["DATABASE_URL"] = f"sqlite:///{tmp_path / 'unused.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "validate", str(tmp_path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b[1-9]\d* SLO\(s\) valid", done.stdout + done.stderr)


def test_pods_run_as_the_images_non_root_user_on_a_read_only_root() -> None:
    pod = _pod()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == _image_user()
    assert pod["automountServiceAccountToken"] is False
    for container in _all_containers():
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]


def test_a_stopping_replica_has_longer_than_one_evaluation_interval() -> None:
    env = {v["name"]: v for v in _bot_container()["env"]}
    interval = parse_duration(env.get("SLO_BOT_EVAL_INTERVAL", {}).get("value", "1m")).total_seconds()
    assert _pod()["terminationGracePeriodSeconds"] > interval


def test_migrations_run_before_the_bot_with_its_image_and_database() -> None:
    bot = _bot_container()
    database = next(v for v in bot["env"] if v["name"] == "DATABASE_URL")
    upgrades = [c for c in _pod().get("initContainers", []) if c.get("args") == ["db", "upgrade"]]
    assert len(upgrades) == 1
    assert upgrades[0]["image"] == bot["image"]
    assert database in upgrades[0]["env"]


# The Dockerfile, read statically (no Docker daemon needed). Hand-written: the few instructions we
# check (FROM, USER, RUN, COPY, HEALTHCHECK) need only continuation lines joined and comments dropped.
def _instructions(text: str) -> Iterator[tuple[str, str]]:
    logical = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.startswith("#")))
    for line in logical.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            yield instruction.upper(), rest.strip()


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction, rest in _instructions((ROOT / "Dockerfile").read_text()):
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, rest))
    return stages


def _image_user() -> int:
    users = [rest for instruction, rest in _stages()[-1] if instruction == "USER"]
    assert users, "the final stage sets no USER: the image runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {uid}: a name, which runAsNonRoot cannot check"
    return int(uid)


def test_the_image_is_multi_stage_and_its_final_stage_runs_as_a_numeric_non_root_user() -> None:
    assert len(_stages()) > 1
    assert _image_user() != 0
    final = _stages()[-1]
    assert any(i == "COPY" and "--from=" in rest for i, rest in final), "final stage copies no build output"
    healthcheck = " ".join(rest for i, rest in final if i == "HEALTHCHECK")
    assert "/healthz" in healthcheck


def test_the_image_installs_slo_bot_from_the_lock_file_without_dev_extras_or_compilers() -> None:
    stages = _stages()
    installs = [
        shlex.split(rest)
        for stage in stages
        for instruction, rest in stage
        if instruction == "RUN" and "pip install" in rest
    ]
    assert installs, "nothing is installed with pip"
    for words in installs:
        constraint = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-c", "--constraint")]
        assert constraint == ["constraints.txt"], " ".join(words)
        assert not any("[dev]" in w for w in words), " ".join(words)
    final_runs = " ".join(rest for i, rest in stages[-1] if i == "RUN")
    for toolchain in ("gcc", "build-essential", "pip install", "apt-get install"):
        assert toolchain not in final_runs, f"the final stage runs {toolchain}"


def test_the_build_context_holds_what_the_image_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "the build context starts empty: .venv, .git and databases stay out"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {
        source.rstrip("/")
        for stage in _stages()
        for instruction, rest in stage
        if instruction == "COPY" and "--from=" not in rest
        for source in rest.split()[:-1]
    }
    assert copied == included, "a COPY of an ignored path breaks the build; an extra `!` lets files in"
    assert {".venv", ".git", ".env"}.isdisjoint(included)
    assert {"**/__pycache__", "**/*.db"} <= set(patterns[patterns.index("*") + 1 :])
