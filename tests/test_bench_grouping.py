"""The alert-quality benchmark's model of Alertmanager grouping (bench/grouping.py): one outage that
pages, crosses a budget threshold and leaves a ticket is 1 message for slo-bot, several for the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench import grouping

T0 = datetime(2026, 1, 1, tzinfo=UTC)
M = timedelta(minutes=1)
OUTAGE = [
    (T0, "page", "firing"),
    (T0 + 2 * M, "budget-50", "firing"),
    (T0 + 40 * M, "page", "resolved"),
    (T0 + 40 * M, "ticket", "firing"),
    (T0 + 400 * M, "ticket", "resolved"),
]


def test_slo_bot_sends_one_message_and_needs_one_acknowledgement_per_breach() -> None:
    load = grouping.slo_bot(OUTAGE, [1, 1, 1, 1, 1])
    assert (load.episodes, load.messages, load.acknowledgements) == (1, 1, 1)


def test_per_alert_messages_are_one_per_firing() -> None:
    assert grouping.per_alert(OUTAGE).messages == 3


def test_alertmanager_notifies_at_start_on_each_change_on_repeat_and_at_the_end() -> None:
    burn = [t for t in OUTAGE if not t[1].startswith("budget")]
    load = grouping.alertmanager(burn, T0 + 600 * M)
    # 00:00:30 page; 00:40:30 the set changed (ticket instead of page); 04:40:30 repeat; resolved
    assert (load.episodes, load.messages, load.acknowledgements) == (1, 4, 1)


def test_alertmanager_stops_at_the_end_of_the_scenario() -> None:
    load = grouping.alertmanager([(T0, "ticket", "firing")], T0 + 10 * timedelta(hours=1))
    assert load.messages == 3  # the first, then a repeat at 4 h and 8 h: still firing at the end
