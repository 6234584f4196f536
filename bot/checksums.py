"""What an SLO's stored buckets depend on, apart from the evaluation that fills them: `apply` stores
it with each SLO and loads neither the evaluation nor its metrics."""

from __future__ import annotations

import hashlib

from bot.annotations import group_by_of
from bot.domain import SLO


def data_checksum(slo: SLO) -> str:
    """What the stored buckets depend on: a change here invalidates them.

    Queries, budgeting and slicing count; where the source lives (URL, credentials) does not, so
    moving to another Prometheus (or a Thanos in front of it) keeps the history.
    """
    indicator = slo.indicator
    metrics = [
        None if m is None else (m.query, m.source.name, m.source.type)
        for m in (indicator.good, indicator.bad, indicator.total, indicator.raw, indicator.threshold)
    ]
    objective = slo.objective
    grouping = group_by_of(slo.annotations)
    key = repr(
        (
            indicator.kind,
            indicator.counter,
            indicator.raw_type,
            metrics,
            slo.budgeting_method,
            objective.op,
            objective.value,
            objective.timeslice_target_ratio,
            objective.timeslice_window,
            # only when grouped: the checksum of every SLO of its own stays what it was
            *([grouping] if grouping else []),
            # a composite's parts, each as an SLO of its own (weights and targets are not data)
            *[(p.slo.name, data_checksum(p.slo)) for p in slo.parts],
        )
    )
    return hashlib.sha256(key.encode()).hexdigest()
