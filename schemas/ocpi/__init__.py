"""OCPI object models per version: Tokens, Locations, Tariffs, Sessions and CDRs.

``model_for(version, module)`` picks the model a pulled object is validated with. The models
keep unknown fields, validate strictly inside pydantic-core, and follow each version's own spec
(see the version modules and ``schemas/NOTES.md`` for the decisions taken where it is unclear).
"""

from __future__ import annotations

from . import v2_1_1, v2_2_1, v2_3_0
from .base import OcpiModel

__all__ = ["MODULES", "VERSIONS", "OcpiModel", "model_for"]

MODULES = ("tokens", "locations", "tariffs", "sessions", "cdrs")
VERSIONS = ("2.1.1", "2.2.1", "2.3.0")

_MODELS: dict[tuple[str, str], type[OcpiModel]] = {
    ("2.1.1", "tokens"): v2_1_1.Token,
    ("2.1.1", "locations"): v2_1_1.Location,
    ("2.1.1", "tariffs"): v2_1_1.Tariff,
    ("2.1.1", "sessions"): v2_1_1.Session,
    ("2.1.1", "cdrs"): v2_1_1.Cdr,
    ("2.2.1", "tokens"): v2_2_1.Token,
    ("2.2.1", "locations"): v2_2_1.Location,
    ("2.2.1", "tariffs"): v2_2_1.Tariff,
    ("2.2.1", "sessions"): v2_2_1.Session,
    ("2.2.1", "cdrs"): v2_2_1.Cdr,
    ("2.3.0", "tokens"): v2_3_0.Token,
    ("2.3.0", "locations"): v2_3_0.Location,
    ("2.3.0", "tariffs"): v2_3_0.Tariff,
    ("2.3.0", "sessions"): v2_3_0.Session,
    ("2.3.0", "cdrs"): v2_3_0.Cdr,
}


def model_for(version: str, module: str) -> type[OcpiModel]:
    """Return the model for one object of ``module`` ("tokens", ...) in OCPI ``version``.

    Raises ``ValueError`` for a version or module this package does not model.
    """
    try:
        return _MODELS[(version, module)]
    except KeyError:
        raise ValueError(
            f"no OCPI model for version {version!r}, module {module!r}; "
            f"versions: {', '.join(VERSIONS)}; modules: {', '.join(MODULES)}"
        ) from None
