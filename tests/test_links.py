"""Signed page links: good until they expire, for the SLO they were made for, with the key they were
signed with; nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from bot.links import Links, sign, verify
from bot.settings import Settings
from bot.web import create_web_app

KEY = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path, query["exp"][0], query["sig"][0]


def test_a_fresh_link_verifies_for_its_slo_until_it_expires() -> None:
    url = Links(key=KEY, public_url="https://slo.example.com/").page("checkout-availability", NOW)
    assert url is not None and url.startswith("https://slo.example.com/slos/checkout-availability?exp=")
    _path, exp, sig = _parts(url)
    assert int(exp) == int((NOW + timedelta(days=7)).timestamp())
    assert verify("checkout-availability", exp, sig, KEY, NOW)
    assert verify("checkout-availability", exp, sig, KEY, NOW + timedelta(days=7) - timedelta(seconds=1))
    assert verify("checkout-availability", exp, sig.upper(), KEY, NOW)  # hex either case


def test_an_expired_link_is_refused() -> None:
    exp = int((NOW - timedelta(seconds=1)).timestamp())
    assert not verify("checkout-availability", str(exp), sign("checkout-availability", exp, KEY), KEY, NOW)
    exp = int(NOW.timestamp())  # expires at this second: gone
    assert not verify("checkout-availability", str(exp), sign("checkout-availability", exp, KEY), KEY, NOW)


def test_a_link_for_another_slo_or_a_later_expiry_is_refused() -> None:
    exp = int((NOW + timedelta(days=1)).timestamp())
    sig = sign("checkout-availability", exp, KEY)
    assert not verify("checkout-latency", str(exp), sig, KEY, NOW)  # tampered name
    assert not verify("checkout-availability", str(exp + 86400), sig, KEY, NOW)  # tampered exp
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert not verify("checkout-availability", str(exp), flipped, KEY, NOW)  # tampered signature


def test_another_key_signs_nothing_this_one_accepts() -> None:
    exp = int((NOW + timedelta(days=1)).timestamp())
    sig = sign("checkout-availability", exp, b"another key, also long enough")
    assert not verify("checkout-availability", str(exp), sig, KEY, NOW)


@pytest.mark.parametrize(
    ("exp", "sig"),
    [
        (None, "a" * 64),
        ("1893456000", None),
        ("", "a" * 64),
        ("-1893456000", "a" * 64),
        ("1e12", "a" * 64),
        ("1893456000", "a" * 63),
        ("1893456000", "é" * 64),  # not ASCII: refused, not a TypeError from compare_digest
        ("9" * 40, "a" * 64),
    ],
)
def test_malformed_query_values_are_refused_not_errors(exp: str | None, sig: str | None) -> None:
    assert not verify("checkout-availability", exp, sig, KEY, NOW)


def test_names_cannot_be_shifted_into_the_expiry() -> None:
    # the signed message separates the name from the expiry: "a\n1" + exp must not sign "a" + "1…"
    exp = int((NOW + timedelta(days=1)).timestamp())
    assert sign("a\n1", exp, KEY) != sign("a", int(f"1{exp}"), KEY)
    assert sign("a b", exp, KEY) != sign("a+b", exp, KEY)


def test_no_public_url_no_link_and_no_key_no_page() -> None:
    assert Links(key=KEY).page("checkout-availability", NOW) is None
    assert Settings.from_env({}).links is None
    assert Settings.from_env({"SLO_BOT_PUBLIC_URL": "https://slo.example.com"}).links is None
    links = Settings.from_env(
        {"SLO_BOT_LINK_KEY": KEY.decode(), "SLO_BOT_PUBLIC_URL": "https://x.example"}
    ).links
    assert links is not None and links.key == KEY and links.public_url == "https://x.example"


def test_a_short_key_or_a_bad_url_is_said_at_start() -> None:
    with pytest.raises(ValueError, match="SLO_BOT_LINK_KEY must be at least 16 bytes"):
        Settings.from_env({"SLO_BOT_LINK_KEY": "short"})
    with pytest.raises(ValueError, match="SLO_BOT_PUBLIC_URL must start with http"):
        Settings.from_env({"SLO_BOT_LINK_KEY": KEY.decode(), "SLO_BOT_PUBLIC_URL": "slo.example.com"})
    assert KEY.decode() not in repr(Settings.from_env({"SLO_BOT_LINK_KEY": KEY.decode()}))


def test_without_a_key_the_page_is_refused_and_says_why() -> None:
    app = create_web_app(None, lambda: (200, {}), None, slo_page=None)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://slo-bot") as client:
            return await client.get("/slos/checkout-availability?exp=1&sig=" + "a" * 64)

    answer = anyio.run(get)
    assert answer.status_code == 403
    assert "SLO_BOT_LINK_KEY" in answer.text and answer.headers["cache-control"] == "no-store"
