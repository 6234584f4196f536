"""The SLO catalogue: OpenSLO v1 (and Sloth) YAML read, validated and built into `bot.domain` SLOs.

`load_paths` never raises for bad input: every problem comes back as
`FILE:LINE: field.path: message`.
"""

from bot.catalogue.loader import build_slos, load_paths
from bot.catalogue.model import Catalogue, CatalogueError, Entry, Problem

__all__ = ["Catalogue", "CatalogueError", "Entry", "Problem", "build_slos", "load_paths"]
