"""The domain SLO of a stored definition, built once per definition and values of its variables.

Every part that reads an SLO from the store (the evaluations, Slack, the incident tools) asks here,
so a definition is parsed once however many of them read it.
"""

from __future__ import annotations

import json
import os
import re

from bot import groups
from bot.catalogue import CatalogueError, build_slos
from bot.domain import SLO
from bot.store.models import SLORecord

_BUILT: dict[tuple[str, str, tuple[tuple[str, str | None], ...]], SLO] = {}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def slo_of(record: SLORecord) -> SLO:
    """Rebuild the domain SLO from its stored documents (secrets substituted now, from the env).

    Built once per definition and values of the variables it uses. A member of a grouped SLO keeps
    its definition's documents: it is built from the definition and its label values; a composite
    SLO's part is the part of that name of its composite.
    """
    variables = tuple((n, os.environ.get(n)) for n in sorted(set(_VARIABLE.findall(record.documents))))
    key = (record.name, record.checksum, variables)
    built = _BUILT.get(key)
    if built is not None:
        return built
    if record.group_id is not None:
        values = json.loads(record.group_key or "[]")
        definition = _definition(groups.definition_of(record.name), record, variables)
        part = next((p.slo for p in definition.parts if p.slo.name == record.name), None)
        if definition.parts and part is None:  # a part the definition no longer has
            raise CatalogueError(())
        built = _BUILT[key] = part or groups.member_slo(definition, values)
        return built
    built = _BUILT[key] = _definition(record.name, record, variables)
    return built


def _definition(name: str, record: SLORecord, variables: tuple[tuple[str, str | None], ...]) -> SLO:
    key = (name, record.checksum, variables)
    built = _BUILT.get(key)
    if built is None:
        for slo in build_slos(json.loads(record.documents)):
            if slo.name == name:
                built = _BUILT[key] = slo
                break
        else:
            raise CatalogueError(())
    return built
