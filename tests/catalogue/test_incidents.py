"""Incident tools in the catalogue: their settings checked at their lines, and attached to SLOs two ways."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from bot import cli
from bot.catalogue import CatalogueError, build_slos
from bot.catalogue.settings import TOOLS
from bot.incidents.base import INCIDENT_TARGET_KINDS
from tests.catalogue.helpers import lines, load_text

TARGET_HEAD = "apiVersion: openslo/v1\nkind: AlertNotificationTarget\n"


def target(kind: str, *annotations: str, metadata_line: str = "") -> str:
    """A target document named x; `annotations` are lines under `metadata.annotations`."""
    notes = "  annotations:" + metadata_line + "\n" + "".join(f"    {a}\n" for a in annotations)
    return f"{TARGET_HEAD}metadata:\n  name: x\n{notes}spec:\n  target: {kind}\n"


def slo(*annotations: str) -> str:
    """An SLO named s whose only particularity is its annotations (lines under them)."""
    notes = "".join(f"    {a}\n" for a in annotations)
    return (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: s\n  annotations:\n"
        f"{notes}spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n"
    )


def policy(*annotations: str) -> str:
    notes = "".join(f"    {a}\n" for a in annotations)
    return (
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata:\n  name: p\n  annotations:\n"
        f"{notes}spec:\n  conditions: [{{conditionRef: burn}}]\n"
    )


ROUTING_KEY = (
    "pagerduty target needs annotation slo-bot/routing-key (its Events API v2 integration key; "
    "write it as ${PAGERDUTY_ROUTING_KEY})"
)
NOT_URL = "not an http(s) URL with a host (value not shown: it may hold a secret)"

# (id, case.yaml text with `#!` on the line the problem must point at, field path, message phrase)
CASES = [
    # PagerDuty
    (
        "pagerduty-routing-key",
        target("pagerduty", "slo-bot/region: eu", metadata_line="  #!"),
        "metadata.annotations",
        ROUTING_KEY,
    ),
    (
        "pagerduty-no-annotations",
        f"{TARGET_HEAD}metadata:  #!\n  name: x\nspec: {{target: pagerduty}}\n",
        "metadata",
        ROUTING_KEY,
    ),
    (
        "target-kind-is-case-insensitive",
        f"{TARGET_HEAD}metadata:  #!\n  name: x\nspec: {{target: PagerDuty}}\n",
        "metadata",
        ROUTING_KEY,
    ),
    (
        "pagerduty-empty-routing-key",
        target("pagerduty", 'slo-bot/routing-key: ""  #!'),
        "metadata.annotations.slo-bot/routing-key",
        "must not be empty: its Events API v2 integration key",
    ),
    (
        "pagerduty-region",
        target(
            "pagerduty", "slo-bot/routing-key: R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01", "slo-bot/region: asia  #!"
        ),
        "metadata.annotations.slo-bot/region",
        "pagerduty region must be us or eu, not 'asia'",
    ),
    (
        "pagerduty-url",
        target(
            "pagerduty",
            "slo-bot/routing-key: R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01",
            "slo-bot/url: ftp://events.example  #!",
        ),
        "metadata.annotations.slo-bot/url",
        NOT_URL,
    ),
    (
        "pagerduty-api-url",
        target(
            "pagerduty",
            "slo-bot/routing-key: R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01",
            "slo-bot/api-url: api.pagerduty.test  #!",
        ),
        "metadata.annotations.slo-bot/api-url",
        NOT_URL,
    ),
    (
        "pagerduty-api-token-without-from",
        target(
            "pagerduty",
            "slo-bot/routing-key: R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01",
            "slo-bot/api-token: t",
            metadata_line="  #!",
        ),
        "metadata.annotations",
        "pagerduty target with slo-bot/api-token needs annotation slo-bot/from (the email of a "
        "PagerDuty user: its REST API wants one in the From header)",
    ),
    (
        "pagerduty-from",
        target(
            "pagerduty",
            "slo-bot/routing-key: R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01",
            "slo-bot/api-token: t",
            "slo-bot/from: ana  #!",
        ),
        "metadata.annotations.slo-bot/from",
        "expected the email of a PagerDuty user, not 'ana'",
    ),
    (
        "pagerduty-inline-in-a-policy",
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: p}\nspec:\n"
        "  conditions: [{conditionRef: burn}]\n  notificationTargets:\n    - kind: AlertNotificationTarget\n"
        "      metadata:\n        name: pd\n        annotations:  #!\n          slo-bot/url: https://pd.test\n"
        "      spec: {target: pagerduty}\n",
        "spec.notificationTargets[0].metadata.annotations",
        ROUTING_KEY,
    ),
    # Opsgenie
    (
        "opsgenie-api-key",
        target("opsgenie", "slo-bot/region: us", metadata_line="  #!"),
        "metadata.annotations",
        "opsgenie target needs annotation slo-bot/api-key (the key of an Opsgenie API integration; "
        "write it as ${OPSGENIE_API_KEY})",
    ),
    (
        "opsgenie-region",
        target("opsgenie", "slo-bot/api-key: k", "slo-bot/region: europe  #!"),
        "metadata.annotations.slo-bot/region",
        "opsgenie region must be us or eu, not 'europe'",
    ),
    (
        "opsgenie-url",
        target("opsgenie", "slo-bot/api-key: k", "slo-bot/url: //api.opsgenie.test  #!"),
        "metadata.annotations.slo-bot/url",
        NOT_URL,
    ),
    # Squadcast
    (
        "squadcast-url-missing",
        target("squadcast", "slo-bot/oncall-group: S0123ABCD", metadata_line="  #!"),
        "metadata.annotations",
        "squadcast target needs annotation slo-bot/url (the incident webhook URL of a Squadcast "
        "service; write it as ${SQUADCAST_WEBHOOK_URL})",
    ),
    (
        "squadcast-url",
        target("squadcast", "slo-bot/url: https://  #!"),
        "metadata.annotations.slo-bot/url",
        NOT_URL,
    ),
    # Webhook
    (
        "webhook-url-missing",
        target("webhook", "slo-bot/secret: s", metadata_line="  #!"),
        "metadata.annotations",
        "webhook target needs annotation slo-bot/url (the http(s) URL slo-bot POSTs each alert to as JSON)",
    ),
    (
        "webhook-secret-missing",
        target("webhook", "slo-bot/url: https://hooks.test/slo", metadata_line="  #!"),
        "metadata.annotations",
        "webhook target needs annotation slo-bot/secret (the HMAC-SHA256 key that signs every request; "
        "write it as ${WEBHOOK_SECRET})",
    ),
    (
        "webhook-url",
        target("webhook", "slo-bot/url: hooks.test/slo  #!", "slo-bot/secret: s"),
        "metadata.annotations.slo-bot/url",
        NOT_URL,
    ),
    (
        "webhook-secret-unset",
        target("webhook", "slo-bot/url: https://hooks.test/slo", "slo-bot/secret: ${HOOK_SECRET}  #!"),
        "metadata.annotations.slo-bot/secret",
        "environment variable HOOK_SECRET is not set",
    ),
    # Escalation, where it is written
    (
        "slo-escalate-after",
        slo("slo-bot/escalate-after: soon  #!"),
        "metadata.annotations.slo-bot/escalate-after",
        "invalid duration 'soon': expected a number and a unit (s, m, h, d, w, M, Q, Y), e.g. 30d: "
        "how long a page may stay unacknowledged, e.g. 15m",
    ),
    (
        "slo-escalate-after-zero",
        slo("slo-bot/escalate-after: 0m  #!"),
        "metadata.annotations.slo-bot/escalate-after",
        "duration '0m' must be greater than zero",
    ),
    (
        "policy-escalate-after",
        policy("slo-bot/escalate-after: -5m  #!"),
        "metadata.annotations.slo-bot/escalate-after",
        "invalid duration '-5m'",
    ),
    (
        "slack-target-escalate-after",
        target("slack", "slo-bot/escalate-after: 15  #!"),
        "metadata.annotations.slo-bot/escalate-after",
        "invalid duration '15'",
    ),
    (
        "slo-oncall-group",
        slo("slo-bot/oncall-group: '@payments-oncall'  #!"),
        "metadata.annotations.slo-bot/oncall-group",
        "'@payments-oncall' is not a Slack user group ID: write the group's ID (S followed by capital "
        "letters and digits, e.g. S0123ABCD), not its @handle",
    ),
    (
        "policy-oncall-group",
        policy("slo-bot/oncall-group: s0123abcd  #!"),
        "metadata.annotations.slo-bot/oncall-group",
        "'s0123abcd' is not a Slack user group ID",
    ),
    (
        "slack-target-oncall-group",
        target("slack", "slo-bot/oncall-group: U0123ABCD  #!"),
        "metadata.annotations.slo-bot/oncall-group",
        "'U0123ABCD' is not a Slack user group ID",
    ),
    # Page targets named by the SLO
    (
        "incident-targets-dangling",
        slo("slo-bot/incident-targets: pager  #!"),
        "metadata.annotations.slo-bot/incident-targets",
        "no AlertNotificationTarget named 'pager' (known: chat)",
    ),
    (
        "incident-targets-slack",
        slo("slo-bot/incident-targets: chat  #!"),
        "metadata.annotations.slo-bot/incident-targets",
        "'chat' is a slack target: slo-bot pages only opsgenie, pagerduty, squadcast, webhook targets",
    ),
]


@pytest.mark.parametrize(("text", "path", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problem_points_at_line_and_field(tmp_path: Path, text: str, path: str, phrase: str) -> None:
    catalogue = load_text(tmp_path, text)
    line = next(n for n, content in enumerate(text.splitlines(), 1) if "#!" in content)
    expected = f"{tmp_path / 'case.yaml'}:{line}: {path}: "
    # each mistake is said once, in full, and nothing else is reported
    assert [p for p in lines(catalogue) if phrase in p] == [p for p in lines(catalogue)]
    assert len(catalogue.problems) == 1 and lines(catalogue)[0].startswith(expected), lines(catalogue)
    assert "s" not in {e.slo.name for e in catalogue.entries}


CATALOGUE = textwrap.dedent(
    """\
    apiVersion: openslo/v1
    kind: AlertNotificationTarget
    metadata:
      name: pd
      annotations:
        slo-bot/routing-key: ${PD_KEY}
        slo-bot/region: eu
        slo-bot/url: https://events.eu.pagerduty.test/v2/enqueue
        slo-bot/api-token: ${PD_TOKEN}
        slo-bot/from: ana@example.com
    spec: {target: pagerduty}
    ---
    apiVersion: openslo/v1
    kind: AlertNotificationTarget
    metadata:
      name: genie
      annotations: {slo-bot/api-key: "${GENIE_KEY}", slo-bot/region: US}
    spec: {target: Opsgenie}
    ---
    apiVersion: openslo/v1
    kind: AlertNotificationTarget
    metadata:
      name: squad
      annotations: {slo-bot/url: "${SQUADCAST_URL}"}
    spec: {target: squadcast}
    ---
    apiVersion: openslo/v1
    kind: AlertNotificationTarget
    metadata:
      name: mail
    spec: {target: email, description: OpenSLO allows any target; slo-bot does not send this one}
    ---
    apiVersion: openslo/v1
    kind: AlertNotificationTarget
    metadata:
      name: team-slack
      annotations: {slo-bot/channel: C0TEAM, slo-bot/oncall-group: S0TEAM, slo-bot/escalate-after: 5m}
    spec: {target: slack}
    ---
    apiVersion: openslo/v1
    kind: AlertPolicy
    metadata:
      name: tickets
      annotations: {slo-bot/escalate-after: 2h, slo-bot/oncall-group: S0TICKETS}
    spec:
      conditions:
        - kind: AlertCondition
          metadata: {name: slow}
          spec:
            severity: Ticket
            condition: {kind: burnrate, threshold: 1, lookbackWindow: 3d}
      notificationTargets:
        - targetRef: team-slack
        - targetRef: mail
        - targetRef: genie
        - kind: AlertNotificationTarget
          metadata:
            name: hook
            annotations: {slo-bot/url: "https://hooks.test/slo", slo-bot/secret: "${HOOK_SECRET}"}
          spec: {target: webhook}
    ---
    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: shop
      annotations:
        slo-bot/incident-targets: pd, squad, pd
        slo-bot/escalate-after: 1h30m
        slo-bot/oncall-group: S0SHOP
    spec:
      service: shop
      indicatorRef: requests
      budgetingMethod: Occurrences
      objectives: [{target: 0.99}]
      alertPolicies: [{alertPolicyRef: page}, {alertPolicyRef: tickets}]
    """
)
ENV = {
    "PD_KEY": "pd-routing-key-of-32-characters0",
    "PD_TOKEN": "pd-token",
    "GENIE_KEY": "genie-key",
    "SQUADCAST_URL": "https://api.squadcast.test/v2/incidents/api/abc",
    "HOOK_SECRET": "hook-secret",
}


def test_every_tool_and_both_ways_of_attaching_load(tmp_path: Path) -> None:
    catalogue = load_text(tmp_path, CATALOGUE, ENV)
    assert lines(catalogue) == []
    (entry,) = catalogue.entries
    shop = entry.slo
    assert [(t.name, t.target) for t in shop.page_targets] == [("pd", "pagerduty"), ("squad", "squadcast")]
    pd = shop.page_targets[0]
    assert (
        pd.annotations["slo-bot/routing-key"] == "pd-routing-key-of-32-characters0"
    )  # ${PD_KEY} substituted
    assert shop.page_targets[1].annotations["slo-bot/url"] == ENV["SQUADCAST_URL"]
    tickets = shop.alert_policies[1]
    assert [(t.name, t.target) for t in tickets.targets] == [
        ("team-slack", "slack"),
        ("mail", "email"),
        ("genie", "Opsgenie"),
        ("hook", "webhook"),
    ]
    assert tickets.targets[3].annotations["slo-bot/secret"] == "hook-secret"
    # the page targets' documents are stored with the SLO, as written
    stored = {d["metadata"]["name"]: d for d in entry.documents}
    assert {"pd", "squad", "genie", "team-slack", "mail", "tickets"} <= set(stored)
    assert stored["pd"]["metadata"]["annotations"]["slo-bot/routing-key"] == "${PD_KEY}"
    assert "hook-secret" not in json.dumps(entry.documents)
    assert build_slos(json.loads(json.dumps(entry.documents)), ENV) == [shop]


def test_stored_page_targets_need_their_variables_again(tmp_path: Path) -> None:
    (entry,) = load_text(tmp_path, CATALOGUE, ENV).entries
    with pytest.raises(CatalogueError, match="environment variable PD_KEY is not set"):
        build_slos(entry.documents, {k: v for k, v in ENV.items() if k != "PD_KEY"})


def test_an_unset_secret_is_one_problem_and_keeps_the_slo_out(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k not in ("PD_KEY", "SQUADCAST_URL")}
    catalogue = load_text(tmp_path, CATALOGUE, env)
    case = tmp_path / "case.yaml"
    # neither "needs annotation" nor "not an http(s) URL" on top of the unset variable
    assert lines(catalogue) == [
        f"{case}:6: metadata.annotations.slo-bot/routing-key: environment variable PD_KEY is not set",
        f"{case}:24: metadata.annotations.slo-bot/url: environment variable SQUADCAST_URL is not set",
    ]
    assert catalogue.entries == ()


def test_a_target_problem_keeps_out_the_slo_that_pages_it(tmp_path: Path) -> None:
    text = CATALOGUE.replace("slo-bot/region: eu", "slo-bot/region: mars")
    catalogue = load_text(tmp_path, text, ENV)
    assert lines(catalogue) == [
        f"{tmp_path / 'case.yaml'}:7: metadata.annotations.slo-bot/region: "
        "pagerduty region must be us or eu, not 'mars'"
    ]
    assert catalogue.entries == ()


def test_every_wrong_name_of_incident_targets_is_reported(tmp_path: Path) -> None:
    text = slo("slo-bot/incident-targets: pager, chat, hooks")
    catalogue = load_text(tmp_path, text)
    where = f"{tmp_path / 'case.yaml'}:6: metadata.annotations.slo-bot/incident-targets: "
    assert lines(catalogue) == [
        where + "no AlertNotificationTarget named 'pager' (known: chat)",
        where
        + "'chat' is a slack target: slo-bot pages only opsgenie, pagerduty, squadcast, webhook targets",
        where + "no AlertNotificationTarget named 'hooks' (known: chat)",
    ]


def test_targets_slo_bot_does_not_send_to_stay_valid(tmp_path: Path) -> None:
    text = (
        target("email", "slo-bot/channel: C0MAIL")
        + "---\n"
        + target("MS-Teams").replace("name: x", "name: y")
    )
    assert lines(load_text(tmp_path, text)) == []


def test_every_incident_tool_has_its_settings_checked() -> None:
    assert set(TOOLS) == INCIDENT_TARGET_KINDS


def test_validate_command_prints_the_line_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLO_BOT_CONFIG", raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    good = tmp_path / "good.yaml"
    load_text(tmp_path, CATALOGUE)  # writes base.yaml beside it
    good.write_text(CATALOGUE)
    assert cli.main(["validate", str(tmp_path / "base.yaml"), str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(CATALOGUE.replace("slo-bot/secret:", "slo-bot/secrets:"))
    capsys.readouterr()
    assert cli.main(["validate", str(tmp_path / "base.yaml"), str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{bad}:59: spec.notificationTargets[3].metadata.annotations.slo-bot/secrets: unknown slo-bot "
        "annotation (did you mean 'slo-bot/secret'?)",
        f"{bad}:59: spec.notificationTargets[3].metadata.annotations: webhook target needs annotation "
        "slo-bot/secret (the HMAC-SHA256 key that signs every request; write it as ${WEBHOOK_SECRET})",
    ]
    assert "Traceback" not in out + err
