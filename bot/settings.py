"""slo-bot's settings, from the environment (SPEC.md's table): the database, the catalogue, the
evaluation period, Slack and incident-tool credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.durations import parse_duration
from bot.links import Links

# The defaults live here, not beside the engine or the source pool, so that reading the settings
# (every command does) loads neither SQLAlchemy nor httpx.
DEFAULT_URL = "sqlite:///slo-bot.db"
DEFAULT_CONCURRENCY = 16  # source queries in flight at once, and connections per source
DEFAULT_CHART_DIR = "slo-bot-charts"  # console mode's burn-down charts, under the working directory


@dataclass(frozen=True)
class Settings:
    # secrets (and a URL that may hold a password) are left out of repr(): never in a log line
    database_url: str = field(default=DEFAULT_URL, repr=False)
    config_paths: tuple[str, ...] = ()
    eval_interval_s: float = 60.0
    concurrency: int = DEFAULT_CONCURRENCY
    default_channel: str | None = None
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    responders: tuple[str, ...] = ()
    host: str = "0.0.0.0"
    pagerduty_webhook_secret: str | None = field(default=None, repr=False)
    opsgenie_webhook_token: str | None = field(default=None, repr=False)
    chart_dir: str = DEFAULT_CHART_DIR
    link_key: str | None = field(default=None, repr=False)  # signs the SLO pages' links
    public_url: str | None = None  # where Slack's readers reach `slo-bot run`, for those links

    @property
    def links(self) -> Links | None:
        """The SLO pages' links; None (no page) without SLO_BOT_LINK_KEY."""
        return Links.of(self.link_key, self.public_url)

    @property
    def mode(self) -> str:
        """`socket`, `http` or `console`, from the Slack credentials present."""
        if self.slack_bot_token and self.slack_app_token:
            return "socket"
        if self.slack_bot_token and self.slack_signing_secret:
            return "http"
        return "console"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        config = env.get("SLO_BOT_CONFIG", "")
        settings = cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_URL,
            config_paths=tuple(p for p in config.split(":") if p),
            eval_interval_s=parse_duration(env.get("SLO_BOT_EVAL_INTERVAL") or "1m").total_seconds(),
            concurrency=int(env.get("SLO_BOT_CONCURRENCY") or DEFAULT_CONCURRENCY),
            default_channel=env.get("SLO_BOT_DEFAULT_CHANNEL") or None,
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_api_url=env.get("SLACK_API_URL") or "https://slack.com/api/",
            responders=tuple(
                r.strip() for r in (env.get("SLO_BOT_RESPONDERS") or "").split(",") if r.strip()
            ),
            host=env.get("SLO_BOT_HOST") or "0.0.0.0",
            pagerduty_webhook_secret=env.get("PAGERDUTY_WEBHOOK_SECRET") or None,
            opsgenie_webhook_token=env.get("OPSGENIE_WEBHOOK_TOKEN") or None,
            chart_dir=env.get("SLO_BOT_CHART_DIR") or DEFAULT_CHART_DIR,
            link_key=env.get("SLO_BOT_LINK_KEY") or None,
            public_url=env.get("SLO_BOT_PUBLIC_URL") or None,
        )
        settings.links  # noqa: B018 - a short key or a malformed URL is said at start, not at a click
        return settings
