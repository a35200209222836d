"""The OCPI modules and versions the puller pulls: the one list of each. Pure."""

from __future__ import annotations

from typing import Final, Literal, get_args

Module = Literal["tokens", "locations", "tariffs", "sessions", "cdrs"]
MODULES: Final[tuple[Module, ...]] = get_args(Module)

OcpiVersion = Literal["2.1.1", "2.2.1", "2.3.0"]
# What discovery chooses when the partner offers several: the newest we speak first.
VERSION_PREFERENCE: Final[tuple[OcpiVersion, ...]] = ("2.3.0", "2.2.1", "2.1.1")
