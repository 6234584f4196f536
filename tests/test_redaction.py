"""Masking secrets in text: every form they travel in, the longest first, never short fragments."""

from __future__ import annotations

import pytest

from bot import redaction


@pytest.mark.parametrize(
    ("text", "secrets", "shown"),
    [
        ("token abcdef in abcdef-2", ["abcdef"], "token *** in ***-2"),
        ("key abcdef123 held", ["abcdef", "abcdef123"], "key *** held"),  # not "***123"
        ("region eu, page 1", ["eu", "1", None, ""], "region eu, page 1"),  # too short to be secrets
    ],
)
def test_mask(text: str, secrets: list[str | None], shown: str) -> None:
    assert redaction.mask(text, secrets) == shown


def test_a_url_gives_its_password_its_basic_auth_header_and_its_query() -> None:
    found = redaction.of_url("https://bot:p%40ss-word@hooks.example.com/in?token=t0ken-value")
    assert found == ["token=t0ken-value", "p%40ss-word", "p@ss-word", "Ym90OnBAc3Mtd29yZA=="]
    assert redaction.of_url("https://hooks.example.com/in") == []
