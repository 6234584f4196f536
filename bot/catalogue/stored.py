"""The domain SLO of a stored definition, built once per definition and values of its variables.

Every part that reads an SLO from the store (the evaluations, Slack, the incident tools) asks here,
so a definition is parsed once however many of them read it.
"""

from __future__ import annotations

import json
import os
import re

from bot.catalogue import CatalogueError, build_slos
from bot.domain import SLO
from bot.store.models import SLORecord

_BUILT: dict[tuple[str, str, tuple[tuple[str, str | None], ...]], SLO] = {}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def slo_of(record: SLORecord) -> SLO:
    """Rebuild the domain SLO from its stored documents (secrets substituted now, from the env).

    Built once per definition and values of the variables it uses.
    """
    variables = tuple((n, os.environ.get(n)) for n in sorted(set(_VARIABLE.findall(record.documents))))
    key = (record.name, record.checksum, variables)
    built = _BUILT.get(key)
    if built is None:
        for slo in build_slos(json.loads(record.documents)):
            if slo.name == record.name:
                built = _BUILT[key] = slo
                break
        else:
            raise CatalogueError(())
    return built
