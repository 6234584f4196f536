"""Fixtures of the incident flow tests (defined in `tests.incidents.harness`)."""

from tests.incidents.harness import fake, make_bot  # noqa: F401
