"""The `check` benchmark (bench/check_bench.py) times the bot's functions by wrapping them by name:
one that was renamed or removed made every run of the benchmark crash before it measured anything."""

from __future__ import annotations

import importlib

from bench import check_bench


def test_every_function_the_check_benchmark_times_is_there() -> None:
    missing = []
    for _depth, label, module_name, attribute in check_bench.TIMED:
        owner: object = importlib.import_module(module_name)
        for name in attribute.split("."):
            owner = getattr(owner, name, None)
            if owner is None:
                missing.append(f"{label}: {module_name}.{attribute}")
                break
    assert missing == []
