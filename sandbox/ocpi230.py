"""OCPI 2.3.0 objects as a delta on the sandbox's 2.2.1 objects (pure, deterministic per object).

What 2.3.0 changes for what the sandbox sends (schemas/ocpi/v2_3_0.py has the full list):

* every cost is a `Price` of `before_taxes` plus itemised `taxes` (was `excl_vat`/`incl_vat`);
* tariffs state `tax_included` (required), and some carry a `min_price` (`PriceLimit`);
* locations gain `help_phone` and `parking_places` (EU AFIR), EVSEs refer to those places in
  `parking` (by id, as the v2.3.0 examples do), DC connectors list `capabilities`;
* tokens are unchanged (TokenType became an open enum; the sandbox's types are all in it).

The upgrade is applied to a fresh 2.2.1-shaped dict and returns it; `h` is the object's own hash,
so an object looks the same on every request.
"""

from __future__ import annotations

from typing import Any, Final

VAT_PERCENT: Final = 21.0


def price(before_taxes: float) -> dict[str, Any]:
    """A 2.3.0 Price with Dutch VAT itemised."""
    return {
        "before_taxes": before_taxes,
        "taxes": [
            {
                "name": "VAT",
                "percentage": VAT_PERCENT,
                "amount": round(before_taxes * VAT_PERCENT / 100, 2),
            }
        ],
    }


def _from_221_price(old: dict[str, Any]) -> dict[str, Any]:
    return price(float(old["excl_vat"]))


def tariff(obj: dict[str, Any], h: int) -> dict[str, Any]:
    """A 2.2.1 tariff as 2.3.0: prices exclude VAT (stated per component), some have a minimum."""
    last_updated = obj.pop("last_updated")
    if h % 4 == 0:
        obj["min_price"] = {"before_taxes": 0.5, "after_taxes": 0.61}
    obj["tax_included"] = "NO"
    obj["last_updated"] = last_updated
    return obj


def location(obj: dict[str, Any], h: int) -> dict[str, Any]:
    """A 2.2.1 location as 2.3.0: parking places the EVSEs refer to, a help line, plug features."""
    evses: list[dict[str, Any]] = obj.get("evses", [])
    last_updated = obj.pop("last_updated")
    places = [
        {
            "id": str(n + 1),
            "physical_reference": f"P{n + 1}",
            "vehicle_types": ["PERSONAL_VEHICLE"] if (h >> n) % 3 else ["PERSONAL_VEHICLE", "VAN"],
            "restricted_to_type": False,
            "reservation_required": False,
        }
        for n in range(len(evses))
    ]
    if places:
        obj["parking_places"] = places
    for n, evse in enumerate(evses):
        evse_last_updated = evse.pop("last_updated")
        evse["parking"] = [str(n + 1)]
        evse["last_updated"] = evse_last_updated
        for connector in evse["connectors"]:
            if connector["power_type"] == "DC":
                connector_last_updated = connector.pop("last_updated")
                connector["capabilities"] = ["ISO_15118_2_PLUG_AND_CHARGE"]
                connector["last_updated"] = connector_last_updated
    if h % 2 == 0:
        obj["help_phone"] = f"+31 30 {h % 10_000_000:07d}"
    obj["last_updated"] = last_updated
    return obj


def session(obj: dict[str, Any], h: int) -> dict[str, Any]:
    """A 2.2.1 session as 2.3.0: its cost becomes a Price."""
    if "total_cost" in obj:
        obj["total_cost"] = _from_221_price(obj["total_cost"])
    return obj


def cdr(obj: dict[str, Any], h: int) -> dict[str, Any]:
    """A 2.2.1 CDR as 2.3.0: Prices, and its tariffs as 2.3.0 tariffs."""
    obj["tariffs"] = [tariff(t, h >> 8) for t in obj.get("tariffs", [])]
    last_updated = obj.pop("last_updated")
    obj["total_cost"] = _from_221_price(obj["total_cost"])
    if h % 3 == 0:
        obj["total_energy_cost"] = price(obj["total_cost"]["before_taxes"])
    obj["last_updated"] = last_updated
    return obj


def token(obj: dict[str, Any], h: int) -> dict[str, Any]:
    """A 2.2.1 token is a valid 2.3.0 token."""
    return obj


UPGRADES: Final = {
    "tokens": token,
    "locations": location,
    "tariffs": tariff,
    "sessions": session,
    "cdrs": cdr,
}
