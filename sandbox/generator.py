"""Deterministic OCPI objects: object *i* of a module is a pure function of (seed, i, revision).

Nothing here holds a list of objects: the sandbox can serve millions because any object can be
rebuilt on demand from its index. `revision` is bumped by a mutation so an updated object really
has different content; `invalid` turns an object into one that breaks the schema in a known way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

from sandbox import ocpi230

Module = Literal["tokens", "locations", "tariffs", "sessions", "cdrs"]
MODULES: Final[tuple[Module, ...]] = ("tokens", "locations", "tariffs", "sessions", "cdrs")
VERSIONS: Final[tuple[str, ...]] = ("2.1.1", "2.2.1", "2.3.0")
InvalidKind = Literal["missing_id", "bad_enum", "bad_date"]
INVALID_KINDS: Final[tuple[InvalidKind, ...]] = ("missing_id", "bad_enum", "bad_date")

_MASK64: Final = (1 << 64) - 1


def mix64(value: int) -> int:
    """splitmix64 finaliser: a cheap, well-distributed 64-bit hash of an integer."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def unit_float(value: int) -> float:
    """A uniform float in [0, 1) from a 64-bit hash."""
    return (mix64(value) >> 11) * (1.0 / (1 << 53))


@lru_cache(maxsize=4096)
def _civil_date(days: int) -> str:
    # Howard Hinnant's days-from-civil inverse; cached per day because one page shares few days.
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return f"{year:04d}-{month:02d}-{day:02d}"


def format_datetime(ms: int, *, fractional: bool = False) -> str:
    """An OCPI DateTime (UTC, `Z`) for epoch milliseconds; fast enough for millions of objects."""
    seconds, millis = divmod(ms, 1000)
    days, second_of_day = divmod(seconds, 86400)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    if fractional:
        return f"{_civil_date(days)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"
    return f"{_civil_date(days)}T{hour:02d}:{minute:02d}:{second:02d}Z"


@dataclass(frozen=True, slots=True)
class Identity:
    """The parts of an object that make its Kafka key (before normalisation)."""

    country_code: str
    party_id: str
    object_id: str
    token_type: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """The sandbox partner's own OCPI identity (country code and party id)."""

    country_code: str = "NL"
    party_id: str = "SBX"


_CONNECTOR_STANDARDS: Final = ("IEC_62196_T2", "IEC_62196_T2_COMBO", "CHADEMO", "IEC_62196_T2")
_CITIES: Final = (
    ("Utrecht", "3511", 52.0907, 5.1214),
    ("Amsterdam", "1012", 52.3676, 4.9041),
    ("Rotterdam", "3011", 51.9244, 4.4777),
    ("Eindhoven", "5611", 51.4416, 5.4697),
    ("Groningen", "9711", 53.2194, 6.5665),
)
_WHITELIST: Final = ("ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER")
_EVSE_STATUS: Final = ("AVAILABLE", "CHARGING", "AVAILABLE", "OUTOFORDER", "AVAILABLE", "BLOCKED")


class ObjectFactory:
    """Builds object *i* of one module for one sandbox seed, in each OCPI version it speaks."""

    def __init__(self, module: Module, seed: int, party: Party) -> None:
        self.module = module
        self.party = party
        # Each module gets its own stream so tokens and locations with the same index differ.
        self._salt = mix64(seed * 31 + MODULES.index(module) + 1)
        self._render: dict[str, Callable[[int, str, int, int], dict[str, Any]]] = {
            "tokens": self._token,
            "locations": self._location,
            "tariffs": self._tariff,
            "sessions": self._session,
            "cdrs": self._cdr,
        }
        self._renderer = self._render[module]
        self._upgrade_to_230 = ocpi230.UPGRADES[module]

    # -- identity ----------------------------------------------------------------------------

    def _h(self, i: int, lane: int = 0) -> int:
        return mix64(self._salt ^ (i * 8 + lane))

    def token_uid(self, i: int) -> str:
        # An odd multiplier mod 2^56 is a bijection, so uids are unique yet look like RFID ids.
        return f"{((i * 0x9E3779B97F4A7C15) + self._salt) & ((1 << 56) - 1):014X}"

    def token_type(self, i: int) -> str:
        return "APP_USER" if self._h(i, 1) % 10 == 0 else "RFID"

    def object_id(self, i: int) -> str:
        """The module's id field (`uid` for tokens)."""
        if self.module == "tokens":
            return self.token_uid(i)
        prefix = {"locations": "LOC", "tariffs": "TRF", "sessions": "SES", "cdrs": "CDR"}
        return f"{prefix[self.module]}{i:09d}"

    def identity(self, i: int) -> Identity:
        token_type = self.token_type(i) if self.module == "tokens" else None
        return Identity(self.party.country_code, self.party.party_id, self.object_id(i), token_type)

    # -- rendering ---------------------------------------------------------------------------

    def render(
        self,
        i: int,
        version: str,
        last_updated_ms: int,
        revision: int = 0,
        invalid: InvalidKind | None = None,
    ) -> dict[str, Any]:
        """Object *i* as the partner would send it in `version` (a fresh dict each call)."""
        obj = self._renderer(i, version, last_updated_ms, revision)
        if version == "2.3.0":  # the renderers write 2.2.1 for any version but 2.1.1
            obj = self._upgrade_to_230(obj, self._h(i, 60))
        if invalid is not None:
            self._break(obj, invalid)
        return obj

    def _break(self, obj: dict[str, Any], kind: InvalidKind) -> None:
        if kind == "missing_id":
            obj.pop("uid" if self.module == "tokens" else "id", None)
        elif kind == "bad_date":
            obj["last_updated"] = "2023-02-30T25:61:00Z"
        elif self.module == "tokens":
            obj["whitelist"] = "SOMETIMES"
        elif self.module == "locations":
            obj["evses"][0]["connectors"][0]["format"] = "WIRELESS_BEAM"
        elif self.module == "tariffs":
            obj["elements"][0]["price_components"][0]["type"] = "BARTER"
        elif self.module == "sessions":
            obj["auth_method"] = "TELEPATHY"
        else:
            obj["auth_method"] = "TELEPATHY"

    def _token(self, i: int, version: str, lu_ms: int, revision: int) -> dict[str, Any]:
        h = self._h(i, 2 + revision)
        uid = self.token_uid(i)
        cc, pid = self.party.country_code, self.party.party_id
        contract_id = f"{cc}-{pid}-C{i:09d}"
        valid = h % 20 != 0
        # Each revision moves to the next whitelist value, so an update always changes content.
        whitelist = _WHITELIST[(self._h(i, 2) + revision) % 3]
        if version == "2.1.1":
            obj: dict[str, Any] = {
                "uid": uid,
                "type": "OTHER" if self.token_type(i) == "APP_USER" else "RFID",
                "auth_id": contract_id,
                "visual_number": f"{pid}-{i:010d}",
                "issuer": "Sandbox eMSP",
                "valid": valid,
                "whitelist": whitelist,
            }
            if (h >> 16) % 4 == 0:
                obj["language"] = "nl"
            obj["last_updated"] = format_datetime(lu_ms)
            return obj
        obj = {
            "country_code": cc,
            "party_id": pid,
            "uid": uid,
            "type": self.token_type(i),
            "contract_id": contract_id,
            "visual_number": f"{pid}-{i:010d}",
            "issuer": "Sandbox eMSP",
            "valid": valid,
            "whitelist": whitelist,
        }
        if (h >> 12) % 3 == 0:
            obj["group_id"] = f"{pid}-G{(i // 50):08d}"
        if (h >> 16) % 4 == 0:
            obj["language"] = "nl"
        if (h >> 20) % 5 == 0:
            obj["default_profile_type"] = ("CHEAP", "FAST", "GREEN", "REGULAR")[(h >> 24) % 4]
        if (h >> 28) % 8 == 0:
            obj["energy_contract"] = {"supplier_name": "Sandbox Energy", "contract_id": f"E{i}"}
        obj["last_updated"] = format_datetime(lu_ms)
        return obj

    def _address(self, i: int) -> tuple[str, str, str, float, float]:
        h = self._h(i, 7)
        city, postcode, lat, lon = _CITIES[h % len(_CITIES)]
        jitter_lat = ((h >> 8) % 20000 - 10000) / 1e6
        jitter_lon = ((h >> 24) % 20000 - 10000) / 1e6
        street = f"Laadpaalstraat {1 + i % 997}"
        return street, city, postcode, lat + jitter_lat, lon + jitter_lon

    def _connectors(self, i: int, e: int, version: str, lu: str) -> list[dict[str, Any]]:
        h = self._h(i, 16 + e)
        connectors: list[dict[str, Any]] = []
        for c in range(1 + h % 2):
            standard = _CONNECTOR_STANDARDS[(h >> (4 + c)) % len(_CONNECTOR_STANDARDS)]
            dc = standard in ("CHADEMO", "IEC_62196_T2_COMBO")
            conn: dict[str, Any] = {
                "id": str(c + 1),
                "standard": standard,
                "format": "CABLE" if dc else "SOCKET",
                "power_type": "DC" if dc else "AC_3_PHASE",
            }
            if version == "2.1.1":
                conn["voltage"] = 400 if dc else 230
                conn["amperage"] = 125 if dc else 32
                conn["tariff_id"] = f"TRF{(i % 50):09d}"
            else:
                conn["max_voltage"] = 400 if dc else 230
                conn["max_amperage"] = 125 if dc else 32
                conn["tariff_ids"] = [f"TRF{(i % 50):09d}"]
            conn["last_updated"] = lu
            connectors.append(conn)
        return connectors

    def _evses(self, i: int, version: str, lu: str, revision: int) -> list[dict[str, Any]]:
        h = self._h(i, 3)
        cc, pid = self.party.country_code, self.party.party_id
        evses: list[dict[str, Any]] = []
        for e in range(1 + h % 3):
            status = _EVSE_STATUS[(self._h(i, 40 + e) + revision) % len(_EVSE_STATUS)]
            evses.append(
                {
                    "uid": f"{i}-{e + 1}",
                    "evse_id": f"{cc}*{pid}*E{i:09d}{e + 1}",
                    "status": status,
                    "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
                    "connectors": self._connectors(i, e, version, lu),
                    "physical_reference": str(e + 1),
                    "last_updated": lu,
                }
            )
        return evses

    def _location(self, i: int, version: str, lu_ms: int, revision: int) -> dict[str, Any]:
        street, city, postcode, lat, lon = self._address(i)
        lu = format_datetime(lu_ms)
        coordinates = {"latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}"}
        if version == "2.1.1":
            return {
                "id": self.object_id(i),
                "type": "ON_STREET" if i % 3 else "PARKING_LOT",
                "name": f"Sandbox Location #{i}",
                "address": street,
                "city": city,
                "postal_code": postcode,
                "country": "NLD",
                "coordinates": coordinates,
                "evses": self._evses(i, version, lu, revision),
                "operator": {"name": "Sandbox CPO"},
                "time_zone": "Europe/Amsterdam",
                "last_updated": lu,
            }
        return {
            "country_code": self.party.country_code,
            "party_id": self.party.party_id,
            "id": self.object_id(i),
            "publish": True,
            "name": f"Sandbox Location #{i}",
            "address": street,
            "city": city,
            "postal_code": postcode,
            "country": "NLD",
            "coordinates": coordinates,
            "parking_type": "ON_STREET" if i % 3 else "PARKING_LOT",
            "evses": self._evses(i, version, lu, revision),
            "operator": {"name": "Sandbox CPO"},
            "time_zone": "Europe/Amsterdam",
            "last_updated": lu,
        }

    def _tariff(self, i: int, version: str, lu_ms: int, revision: int) -> dict[str, Any]:
        h = self._h(i, 5)
        energy_price = round(0.20 + ((h + revision) % 30) / 100, 2)
        component: dict[str, Any] = {"type": "ENERGY", "price": energy_price, "step_size": 1}
        parking: dict[str, Any] = {"type": "PARKING_TIME", "price": 2.0, "step_size": 300}
        if version != "2.1.1":
            component["vat"] = 21.0
            parking["vat"] = 21.0
        elements: list[dict[str, Any]] = [{"price_components": [component]}]
        if h % 3 == 0:
            elements.append(
                {
                    "price_components": [parking],
                    "restrictions": {"start_time": "09:00", "end_time": "18:00"},
                }
            )
        obj: dict[str, Any] = {}
        if version != "2.1.1":
            obj["country_code"] = self.party.country_code
            obj["party_id"] = self.party.party_id
        obj["id"] = f"TRF{i:09d}"
        obj["currency"] = "EUR"
        obj["tariff_alt_text"] = [{"language": "en", "text": f"{energy_price:.2f} EUR/kWh"}]
        obj["elements"] = elements
        obj["last_updated"] = format_datetime(lu_ms)
        return obj

    def _charge(self, i: int, lu_ms: int) -> tuple[str, str, float, float]:
        h = self._h(i, 6)
        minutes = 10 + h % 180
        end_ms = lu_ms - 60_000
        start_ms = end_ms - minutes * 60_000
        kwh = round(minutes * 0.18, 3)
        return format_datetime(start_ms), format_datetime(end_ms), kwh, minutes / 60

    def _token_ref(self, i: int) -> tuple[str, str]:
        return f"{(mix64(i) & ((1 << 56) - 1)):014X}", f"NL-EMP-C{i % 1000000:08d}"

    def _session(self, i: int, version: str, lu_ms: int, revision: int) -> dict[str, Any]:
        start, end, kwh, _hours = self._charge(i, lu_ms)
        kwh = round(kwh + revision * 0.5, 3)  # an update always changes the session
        uid, contract = self._token_ref(i)
        status = "COMPLETED" if (self._h(i, 9) + revision) % 4 else "ACTIVE"
        cost = {"excl_vat": round(kwh * 0.3, 2), "incl_vat": round(kwh * 0.363, 2)}
        period = {
            "start_date_time": start,
            "dimensions": [{"type": "ENERGY", "volume": kwh}],
        }
        if version == "2.1.1":
            return {
                "id": self.object_id(i),
                "start_datetime": start,
                "end_datetime": end,
                "kwh": kwh,
                "auth_id": contract,
                "auth_method": "WHITELIST",
                "location": self._location(i % 1000, version, lu_ms, 0),
                "currency": "EUR",
                "charging_periods": [period],
                "total_cost": cost["excl_vat"],
                "status": status,
                "last_updated": format_datetime(lu_ms),
            }
        location_index = i % 1000
        return {
            "country_code": self.party.country_code,
            "party_id": self.party.party_id,
            "id": self.object_id(i),
            "start_date_time": start,
            "end_date_time": end,
            "kwh": kwh,
            "cdr_token": {
                "country_code": "NL",
                "party_id": "EMP",
                "uid": uid,
                "type": "RFID",
                "contract_id": contract,
            },
            "auth_method": "WHITELIST",
            "location_id": f"LOC{location_index:09d}",
            "evse_uid": f"{location_index}-1",
            "connector_id": "1",
            "currency": "EUR",
            "charging_periods": [period],
            "total_cost": cost,
            "status": status,
            "last_updated": format_datetime(lu_ms),
        }

    def _cdr(self, i: int, version: str, lu_ms: int, revision: int) -> dict[str, Any]:
        start, end, kwh, hours = self._charge(i, lu_ms)
        uid, contract = self._token_ref(i)
        excl = round(kwh * 0.3 + revision * 0.01, 2)
        period = {"start_date_time": start, "dimensions": [{"type": "ENERGY", "volume": kwh}]}
        tariff = self._tariff(i % 50, version, lu_ms - 86_400_000, 0)
        if version == "2.1.1":
            return {
                "id": self.object_id(i),
                "start_date_time": start,
                "stop_date_time": end,
                "auth_id": contract,
                "auth_method": "WHITELIST",
                "location": self._location(i % 1000, version, lu_ms, 0),
                "currency": "EUR",
                "tariffs": [tariff],
                "charging_periods": [period],
                "total_cost": excl,
                "total_energy": kwh,
                "total_time": round(hours, 3),
                "last_updated": format_datetime(lu_ms),
            }
        street, city, postcode, lat, lon = self._address(i % 1000)
        location_index = i % 1000
        cc, pid = self.party.country_code, self.party.party_id
        return {
            "country_code": cc,
            "party_id": pid,
            "id": self.object_id(i),
            "start_date_time": start,
            "end_date_time": end,
            "cdr_token": {
                "country_code": "NL",
                "party_id": "EMP",
                "uid": uid,
                "type": "RFID",
                "contract_id": contract,
            },
            "auth_method": "WHITELIST",
            "cdr_location": {
                "id": f"LOC{location_index:09d}",
                "name": f"Sandbox Location #{location_index}",
                "address": street,
                "city": city,
                "postal_code": postcode,
                "country": "NLD",
                "coordinates": {"latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}"},
                "evse_uid": f"{location_index}-1",
                "evse_id": f"{cc}*{pid}*E{location_index:09d}1",
                "connector_id": "1",
                "connector_standard": "IEC_62196_T2",
                "connector_format": "SOCKET",
                "connector_power_type": "AC_3_PHASE",
            },
            "currency": "EUR",
            "tariffs": [tariff],
            "charging_periods": [period],
            "total_cost": {"excl_vat": excl, "incl_vat": round(excl * 1.21, 2)},
            "total_energy": kwh,
            "total_time": round(hours, 3),
            "last_updated": format_datetime(lu_ms),
        }
