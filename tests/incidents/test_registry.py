"""The registry: one implementation per incident tool kind, and settings refused with a useful message."""

from __future__ import annotations

import httpx
import pytest

from bot.domain import NotificationTarget
from bot.incidents import INCIDENT_TARGET_KINDS, TARGETS, TargetRejected, make_target
from bot.incidents.opsgenie import OpsgenieTarget
from bot.incidents.pagerduty import PagerDutyTarget
from bot.incidents.squadcast import SquadcastTarget
from bot.incidents.webhook import WebhookTarget
from tests.fakeincidents import OPSGENIE_KEY, ROUTING_KEY
from tests.incidents import settings

VALID = {
    "pagerduty": {"routing-key": ROUTING_KEY},
    "opsgenie": {"api-key": OPSGENIE_KEY},
    "squadcast": {"url": "https://api.squadcast.com/v2/incidents/api/k3y"},
    "webhook": {"url": "https://hooks.example.com/slo", "secret": "s3cret"},
}


def test_every_kind_slo_bot_delivers_to_has_an_implementation() -> None:
    assert set(TARGETS) == INCIDENT_TARGET_KINDS == set(VALID)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("pagerduty", PagerDutyTarget),
        ("PagerDuty", PagerDutyTarget),
        ("opsgenie", OpsgenieTarget),
        ("squadcast", SquadcastTarget),
        (" Webhook ", WebhookTarget),
    ],
)
def test_make_target_picks_the_implementation_by_kind(kind: str, cls: type) -> None:
    with httpx.Client() as client:
        made = make_target(settings(kind, VALID[kind.strip().lower()]), client)
    assert isinstance(made, cls)


def test_an_unknown_kind_is_refused_naming_the_target() -> None:
    with httpx.Client() as client, pytest.raises(TargetRejected) as caught:
        make_target(NotificationTarget("sre-chat", "victorops"), client)
    assert "'sre-chat'" in str(caught.value)
    assert "'victorops'" in str(caught.value)
    assert "pagerduty" in str(caught.value)  # what it could be instead


@pytest.mark.parametrize(
    ("kind", "dropped"),
    [
        ("pagerduty", "routing-key"),
        ("opsgenie", "api-key"),
        ("squadcast", "url"),
        ("webhook", "url"),
        ("webhook", "secret"),
    ],
)
def test_a_missing_required_annotation_is_named(kind: str, dropped: str) -> None:
    annotations = {k: v for k, v in VALID[kind].items() if k != dropped}
    with httpx.Client() as client, pytest.raises(TargetRejected) as caught:
        make_target(settings(kind, annotations, name="payments-oncall"), client)
    assert "'payments-oncall'" in str(caught.value)
    assert f"slo-bot/{dropped} is missing" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "annotations", "words"),
    [
        ("pagerduty", {"region": "apac"}, "slo-bot/region must be us or eu"),
        ("opsgenie", {"region": "mars"}, "slo-bot/region must be us or eu"),
        ("opsgenie", {"url": "api.opsgenie.com"}, "slo-bot/url is not an http(s) URL"),
        ("webhook", {"url": "hooks.example.com/slo?token=abc123"}, "slo-bot/url is not an http(s) URL"),
    ],
)
def test_malformed_annotations_are_refused_without_echoing_them(
    kind: str, annotations: dict[str, str], words: str
) -> None:
    with httpx.Client() as client, pytest.raises(TargetRejected) as caught:
        make_target(settings(kind, {**VALID[kind], **annotations}), client)
    assert words in str(caught.value)
    assert "abc123" not in str(caught.value)


def test_a_blank_annotation_counts_as_missing() -> None:
    with httpx.Client() as client, pytest.raises(TargetRejected, match="slo-bot/api-key is missing"):
        make_target(settings("opsgenie", {"api-key": "   "}), client)
