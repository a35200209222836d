"""OCPI object models per version: Tokens, Locations, Tariffs, Sessions and CDRs.

``model_for(version, module)`` picks the model a pulled object is validated with. The models
keep unknown fields, validate strictly inside pydantic-core, and follow each version's own spec
(see the version modules and ``schemas/NOTES.md`` for the decisions taken where it is unclear).
"""

from __future__ import annotations

import importlib

from .base import OcpiModel

__all__ = ["MODULES", "VERSIONS", "OcpiModel", "model_for"]

MODULES = ("tokens", "locations", "tariffs", "sessions", "cdrs")
VERSIONS = ("2.1.1", "2.2.1", "2.3.0")

# Each version's models live in their own module, imported when first asked for: a pull reads
# one version, and loading the other two costs ~2 MB of every pull's memory.
_VERSION_MODULES = {"2.1.1": "v2_1_1", "2.2.1": "v2_2_1", "2.3.0": "v2_3_0"}
_MODEL_NAMES = {
    "tokens": "Token",
    "locations": "Location",
    "tariffs": "Tariff",
    "sessions": "Session",
    "cdrs": "Cdr",
}


def model_for(version: str, module: str) -> type[OcpiModel]:
    """Return the model for one object of ``module`` ("tokens", ...) in OCPI ``version``.

    Raises ``ValueError`` for a version or module this package does not model.
    """
    try:
        package, name = _VERSION_MODULES[version], _MODEL_NAMES[module]
    except KeyError:
        raise ValueError(
            f"no OCPI model for version {version!r}, module {module!r}; "
            f"versions: {', '.join(VERSIONS)}; modules: {', '.join(MODULES)}"
        ) from None
    model: type[OcpiModel] = getattr(importlib.import_module(f"{__name__}.{package}"), name)
    return model
