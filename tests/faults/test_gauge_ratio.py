"""Fault: a gauge ratio (`counter: false`) counted one sample as a whole step's events.

Old data was fetched at hourly steps and an hourly sample weighed what one minute's sample weighs,
so recent minutes outweighed old hours sixty to one and a recent incident looked many times worse.
Now the same data gives the same numbers as the counter form, whatever tier a minute falls in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults import catalogues as faults
from tests.promharness import History


def test_a_gauge_ratio_gives_the_numbers_of_the_counter_form(
    tmp_path: Path, database_url: str, prometheus: str, prom_history: History
) -> None:
    h = prom_history
    catalogue = faults.catalogue(
        faults.datasource("prom", prometheus),
        faults.ratio_slo("counted", "prom", h.good_selector, h.total_selector),
        # requests per second, each sample standing for its minute
        faults.ratio_slo(
            "sampled",
            "prom",
            f"sum(rate({h.good_selector}[{{{{window}}}}]))",
            f"sum(rate({h.total_selector}[{{{{window}}}}]))",
            counter=False,
        ),
    )
    (tmp_path / "slos.yaml").write_text(catalogue)
    env = {**os.environ, "DATABASE_URL": database_url, "SLO_BOT_CONFIG": str(tmp_path / "slos.yaml")}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    rows = {row["slo"]: row for row in json.loads(out.stdout)}
    counted, sampled = rows["counted"], rows["sampled"]
    assert sampled["sli"] == pytest.approx(counted["sli"], abs=1e-6)
    assert sampled["budget"]["consumed"] == pytest.approx(counted["budget"]["consumed"], rel=0.01)
    # events: requests per second times the seconds each sample stands for
    assert sampled["total"] == pytest.approx(counted["total"], rel=0.001)
    for window, burn in counted["burn_rates"].items():  # no data (None) in the same windows too
        expected = None if burn is None else pytest.approx(burn, rel=0.01, abs=1e-3)
        assert sampled["burn_rates"][window] == expected, window
