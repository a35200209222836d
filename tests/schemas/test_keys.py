"""Tests for ``schemas.keys.object_key``: the Kafka key of every OCPI object."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.keys import (
    ObjectKeyError,
    PartnerIdentity,
    canonical_token_type,
    key_function,
    object_key,
    page_key_function,
)
from schemas.ocpi import MODULES, VERSIONS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ocpi"
PARTNER = PartnerIdentity(country_code="nl", party_id="tnm")
PREFIX_MODULE = {"token": "tokens", "location": "locations", "tariff": "tariffs"}
PREFIX_MODULE |= {"session": "sessions", "cdr": "cdrs", "tariffrestriction": "tariffs"}

OWNED = {"country_code": "nl", "party_id": "tnm"}

KEY_TABLE = [
    # 2.2.1 / 2.3.0: the object's own owner; CiString parts upper-cased; the token type as
    # listed (a listed value in other case is read as listed, even where the enum is open).
    ("2.2.1", "tokens", {**OWNED, "uid": "04a1b2", "type": "RFID"}, "NL/TNM/04A1B2/RFID"),
    ("2.3.0", "tokens", {**OWNED, "uid": "04a1b2", "type": "EMAID"}, "NL/TNM/04A1B2/EMAID"),
    ("2.3.0", "tokens", {**OWNED, "uid": "04a1b2", "type": "rfid"}, "NL/TNM/04A1B2/RFID"),
    ("2.2.1", "tokens", {**OWNED, "uid": "04a1b2", "type": "App_User"}, "NL/TNM/04A1B2/APP_USER"),
    ("2.3.0", "tokens", {**OWNED, "uid": "04a1b2", "type": "wallet"}, "NL/TNM/04A1B2/wallet"),
    ("2.1.1", "tokens", {"uid": "04a1b2", "type": "rfid"}, "NL/TNM/04a1b2/RFID"),
    ("2.2.1", "locations", {**OWNED, "id": "Loc1"}, "NL/TNM/LOC1"),
    ("2.2.1", "tariffs", {**OWNED, "id": "t-12"}, "NL/TNM/T-12"),
    ("2.2.1", "sessions", {**OWNED, "id": "s1"}, "NL/TNM/S1"),
    ("2.2.1", "cdrs", {**OWNED, "id": "cdr-1"}, "NL/TNM/CDR-1"),
    ("2.3.0", "locations", {**OWNED, "id": "Loc1"}, "NL/TNM/LOC1"),
    ("2.3.0", "tariffs", {**OWNED, "id": "t-12"}, "NL/TNM/T-12"),
    ("2.3.0", "sessions", {**OWNED, "id": "s1"}, "NL/TNM/S1"),
    ("2.3.0", "cdrs", {**OWNED, "id": "cdr-1"}, "NL/TNM/CDR-1"),
    # 2.1.1: the partner is the owner; ids are case-sensitive except the CDR id (CiString).
    ("2.1.1", "tokens", {"uid": "04a1b2", "type": "RFID"}, "NL/TNM/04a1b2/RFID"),
    ("2.1.1", "locations", {"id": "Loc1"}, "NL/TNM/Loc1"),
    ("2.1.1", "tariffs", {"id": "t-12"}, "NL/TNM/t-12"),
    ("2.1.1", "sessions", {"id": "s1"}, "NL/TNM/s1"),
    ("2.1.1", "cdrs", {"id": "cdr-1"}, "NL/TNM/CDR-1"),
    # "/" and "%" are percent-encoded so the parts stay unambiguous.
    ("2.2.1", "locations", {**OWNED, "id": "a/b"}, "NL/TNM/A%2FB"),
    ("2.2.1", "locations", {**OWNED, "id": "50%"}, "NL/TNM/50%25"),
    ("2.2.1", "locations", {**OWNED, "id": "%2F"}, "NL/TNM/%252F"),
    ("2.1.1", "locations", {"id": "a/b%c"}, "NL/TNM/a%2Fb%25c"),
    ("2.2.1", "tokens", {**OWNED, "uid": "x", "type": "A/B"}, "NL/TNM/X/A%2FB"),
    # Upper-casing is ASCII-only (str.upper would turn "ß" into "SS").
    ("2.2.1", "locations", {**OWNED, "id": "straße"}, "NL/TNM/STRAßE"),
]


@pytest.mark.parametrize(("version", "module", "obj", "expected"), KEY_TABLE)
def test_object_key(version: str, module: str, obj: dict[str, Any], expected: str) -> None:
    assert object_key(module, version, obj, PARTNER) == expected


@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
def test_hub_feed_keys_each_object_by_its_own_party(version: str) -> None:
    feed = [
        {"country_code": "NL", "party_id": "TNM", "id": "LOC1"},
        {"country_code": "de", "party_id": "abc", "id": "LOC1"},
        {"country_code": "BE", "party_id": "BEC", "id": "LOC1"},
    ]
    hub = PartnerIdentity(country_code="NL", party_id="HUB")
    keys = [object_key("locations", version, obj, hub) for obj in feed]
    assert keys == ["NL/TNM/LOC1", "DE/ABC/LOC1", "BE/BEC/LOC1"]
    assert [object_key("locations", version, obj, None) for obj in feed] == keys


def test_keys_are_case_insensitive_where_the_spec_is() -> None:
    lower = {"country_code": "nl", "party_id": "tnm", "uid": "abc", "type": "RFID"}
    upper = {"country_code": "NL", "party_id": "TNM", "uid": "ABC", "type": "RFID"}
    assert object_key("tokens", "2.2.1", lower, None) == object_key("tokens", "2.2.1", upper, None)
    assert object_key("tokens", "2.1.1", {"uid": "abc", "type": "RFID"}, PARTNER) != object_key(
        "tokens", "2.1.1", {"uid": "ABC", "type": "RFID"}, PARTNER
    )


def test_a_uid_is_unique_only_with_its_type() -> None:
    rfid = object_key("tokens", "2.2.1", {**OWNED, "uid": "123", "type": "RFID"}, None)
    app = object_key("tokens", "2.2.1", {**OWNED, "uid": "123", "type": "APP_USER"}, None)
    assert rfid != app


def test_2_1_1_needs_the_partner_identity() -> None:
    with pytest.raises(ObjectKeyError, match="partner identity is required"):
        object_key("locations", "2.1.1", {"id": "LOC1"}, None)


def test_2_1_1_ignores_owner_fields_in_the_object() -> None:
    obj = {"id": "LOC1", "country_code": "DE", "party_id": "XXX"}
    assert object_key("locations", "2.1.1", obj, PARTNER) == "NL/TNM/LOC1"


@pytest.mark.parametrize(
    ("version", "module", "obj", "message"),
    [
        (
            "2.2.1",
            "locations",
            {"country_code": "NL", "party_id": "TNM"},
            "locations id is missing",
        ),
        ("2.2.1", "locations", {"party_id": "TNM", "id": "1"}, "country_code is missing"),
        ("2.2.1", "locations", {**OWNED, "id": None}, "locations id is missing"),
        ("2.2.1", "locations", {**OWNED, "id": 17}, "id is a int, not a string"),
        ("2.2.1", "locations", {**OWNED, "id": ""}, "locations id is empty"),
        ("2.2.1", "tokens", {**OWNED, "uid": "1"}, "tokens type is missing"),
        ("2.2.1", "tokens", {**OWNED, "uid": "1", "type": ["RFID"]}, "type is a list"),
        ("2.3.0", "cdrs", {"country_code": "NL", "party_id": "", "id": "1"}, "party_id is empty"),
        ("2.1.1", "tokens", {"uid": "1"}, "tokens type is missing"),
    ],
)
def test_missing_or_bad_parts_raise(
    version: str, module: str, obj: dict[str, Any], message: str
) -> None:
    with pytest.raises(ObjectKeyError, match=message):
        object_key(module, version, obj, PARTNER)


def test_bad_partner_identity_and_unknown_module_raise() -> None:
    with pytest.raises(ObjectKeyError, match="partner party_id is empty"):
        object_key("locations", "2.1.1", {"id": "1"}, PartnerIdentity("NL", ""))
    with pytest.raises(ObjectKeyError, match="unknown OCPI module 'commands'"):
        object_key("commands", "2.2.1", {**OWNED, "id": "1"}, None)
    with pytest.raises(ObjectKeyError, match=r"unknown OCPI module 'locations' in version '2\.2'"):
        object_key("locations", "2.2", {**OWNED, "id": "1"}, None)
    with pytest.raises(ObjectKeyError, match="not a JSON object"):
        object_key("locations", "2.2.1", ["NL", "TNM", "1"], None)  # type: ignore[arg-type]
    assert issubclass(ObjectKeyError, ValueError)


def test_partner_identity_is_a_frozen_value() -> None:
    with pytest.raises(AttributeError):
        PARTNER.party_id = "XXX"  # type: ignore[misc]
    assert PartnerIdentity("NL", "TNM") == PartnerIdentity("NL", "TNM")


def test_every_spec_example_has_a_key() -> None:
    fragments = ("location_energymix", "location_hours", "location_regularhours", "transport_")
    seen = 0
    for version in VERSIONS:
        for path in sorted((FIXTURES / version).glob("*.json")):
            if path.name.startswith(fragments):
                continue
            module = PREFIX_MODULE[path.name.split("_")[0]]
            obj = json.loads(path.read_text(encoding="utf-8"))
            key = object_key(module, version, obj, PARTNER)
            assert key.count("/") == (3 if module == "tokens" else 2), (path, key)
            seen += 1
    assert seen > 50
    assert set(PREFIX_MODULE.values()) == set(MODULES)


text_parts = st.text(min_size=1, max_size=12)


@given(country=text_parts, party=text_parts, uid=text_parts, token_type=text_parts)
def test_key_parts_decode_back(country: str, party: str, uid: str, token_type: str) -> None:
    obj = {"country_code": country, "party_id": party, "uid": uid, "type": token_type}
    parts = object_key("tokens", "2.3.0", obj, None).split("/")
    assert len(parts) == 4
    ascii_upper = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    expected = [country.translate(ascii_upper), party.translate(ascii_upper)]
    expected += [uid.translate(ascii_upper), canonical_token_type("2.3.0", token_type)]
    assert [unquote(p) for p in parts] == expected


@given(first=text_parts, second=text_parts)
def test_distinct_ids_give_distinct_keys(first: str, second: str) -> None:
    def key(value: str) -> str:
        return object_key("locations", "2.1.1", {"id": value}, PARTNER)

    assert (key(first) == key(second)) == (first == second)


_PART = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=6),
    st.sampled_from(["nl", "NL", "tnm", "a/b", "50%", "", "ß", "RFID", "APP_USER"]),
)


@settings(max_examples=400, deadline=None)
@given(
    module=st.sampled_from(["tokens", "locations", "tariffs", "sessions", "cdrs"]),
    version=st.sampled_from(["2.1.1", "2.2.1", "2.3.0"]),
    partner=st.one_of(st.none(), st.just(PartnerIdentity("de", "tnm"))),
    obj=st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(("country_code", "party_id", "id", "uid", "type"), _PART),
    ),
)
def test_key_function_is_object_key(
    module: str, version: str, partner: PartnerIdentity | None, obj: dict[str, object]
) -> None:
    """The puller's fast key path agrees with object_key on every input, errors included."""
    fast = key_function(module, version, partner)

    def outcome(make_key: Any) -> str:
        try:
            return "key " + str(make_key(obj))
        except ObjectKeyError as error:
            return "error " + str(error)

    assert outcome(fast) == outcome(lambda o: object_key(module, version, o, partner))
    # The same for a decoded struct, read by attributes (the page reader's fast path).
    by_attributes = key_function(module, version, partner, attributes=True)
    assert outcome(lambda o: by_attributes(SimpleNamespace(**o))) == outcome(fast)


# --- Keys are a contract on Kafka; dialect objects key like canonical ones ------------------

# One spec example per version and module, keyed with partner NL/TNM (used by 2.1.1 only).
EXAMPLE_KEYS = [
    ("2.1.1", "cdrs", "cdr_example.json", "NL/TNM/12345"),
    ("2.1.1", "locations", "location_example.json", "NL/TNM/LOC1"),
    ("2.1.1", "sessions", "session_example_1_simple_start.json", "NL/TNM/101"),
    ("2.1.1", "tariffs", "tariff_example_1_simple_2_euro_per_hour.json", "NL/TNM/12"),
    ("2.1.1", "tokens", "token_example.json", "NL/TNM/012345678/RFID"),
    ("2.2.1", "cdrs", "cdr_example.json", "BE/BEC/12345"),
    ("2.2.1", "locations", "location_example.json", "BE/BEC/LOC1"),
    ("2.2.1", "sessions", "session_example_1_simple_start.json", "NL/STK/101"),
    ("2.2.1", "tariffs", "tariff_10_025kwh_parking_start.json", "DE/ALL/18"),
    (
        "2.2.1",
        "tokens",
        "token_example_1_app_user.json",
        "DE/TNM/BDF21BCE-FC97-11E8-8EB2-F2801F1B9FD1/APP_USER",
    ),
    ("2.3.0", "cdrs", "cdr_example.json", "BE/BEC/12345"),
    ("2.3.0", "locations", "location_example.json", "BE/BEC/LOC1"),
    ("2.3.0", "sessions", "session_example_1_simple_start.json", "NL/STK/101"),
    ("2.3.0", "tariffs", "tariff_10_025kwh_parking_start.json", "DE/ALL/18"),
    (
        "2.3.0",
        "tokens",
        "token_example_1_app_user.json",
        "DE/TNM/BDF21BCE-FC97-11E8-8EB2-F2801F1B9FD1/APP_USER",
    ),
]
NL_TNM = PartnerIdentity("NL", "TNM")


def example(version: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / version / name).read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(("version", "module", "name", "key"), EXAMPLE_KEYS)
def test_spec_example_keys_are_stable(version: str, module: str, name: str, key: str) -> None:
    obj = example(version, name)
    assert object_key(module, version, obj, NL_TNM) == key
    assert key_function(module, version, NL_TNM)(obj) == key


# The identity fields the spec types as CiString, per version (2.1.1 ids are case-sensitive).
CASE_INSENSITIVE = {
    "2.1.1": {"cdrs": ("id",)},
    "2.2.1": dict.fromkeys(MODULES, ("country_code", "party_id", "id", "uid")),
    "2.3.0": dict.fromkeys(MODULES, ("country_code", "party_id", "id", "uid")),
}


def with_case(obj: dict[str, Any], fields: tuple[str, ...], change: Any) -> dict[str, Any]:
    return {k: change(v) if k in fields and isinstance(v, str) else v for k, v in obj.items()}


@pytest.mark.parametrize(("version", "module", "name", "key"), EXAMPLE_KEYS)
def test_lower_case_objects_key_like_canonical_ones(
    version: str, module: str, name: str, key: str
) -> None:
    obj = example(version, name)
    fields = CASE_INSENSITIVE[version].get(module, ())
    for change in (str.lower, str.upper, str.swapcase):
        variant = with_case(obj, fields, change)
        assert object_key(module, version, variant, NL_TNM) == key
        assert key_function(module, version, NL_TNM)(variant) == key
    # Case-sensitive ids keep their case (2.1.1 string ids): a different case, a different key.
    other = [f for f in ("id", "uid") if f in obj and f not in fields and obj[f].lower() != obj[f]]
    for field in other:
        assert object_key(module, version, with_case(obj, (field,), str.lower), NL_TNM) != key


ascii_parts = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)


@given(
    version=st.sampled_from(["2.2.1", "2.3.0"]),
    module=st.sampled_from(MODULES),
    obj=st.fixed_dictionaries(
        dict.fromkeys(("country_code", "party_id", "id", "uid"), ascii_parts)
        | {"type": st.sampled_from(["RFID", "APP_USER", "OTHER"])}
    ),
    flips=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_any_case_of_a_ci_string_gives_the_same_key(
    version: str, module: str, obj: dict[str, str], flips: list[bool]
) -> None:
    variant = dict(obj)
    for field, flip in zip(("country_code", "party_id", "id", "uid"), flips, strict=True):
        if flip:
            variant[field] = variant[field].swapcase()
    assert object_key(module, version, variant, None) == object_key(module, version, obj, None)


def test_a_lenient_reading_keys_like_the_canonical_object() -> None:
    """An enum in other case (``rfid``) is a lenient dialect, not a CiString: the reading holds the
    listed spelling, and the key reads the type as listed whatever the object says, so the
    reading, the object as sent and the canonical object all have one key."""
    from schemas.validation import PageValidator

    canonical = example("2.2.1", "token_example_2_full_rfid.json")
    sent = canonical | {"country_code": "de", "type": "rfid", "last_updated": "2018-12-10 17:25:10"}
    report = PageValidator("2.2.1", "tokens").check_items([sent])
    assert report.invalid == []
    make_key = key_function("tokens", "2.2.1", None)
    assert make_key(report.reading(0, sent)) == make_key(canonical) == "DE/TNM/12345678905880/RFID"
    assert make_key(sent) == "DE/TNM/12345678905880/RFID"  # as sent (a dead letter in strict)


@settings(max_examples=400, deadline=None)
@given(
    module=st.sampled_from(["tokens", "locations", "tariffs", "sessions", "cdrs"]),
    version=st.sampled_from(["2.1.1", "2.2.1", "2.3.0"]),
    partner=st.one_of(st.none(), st.just(PartnerIdentity("de", "tnm"))),
    objects=st.lists(
        st.fixed_dictionaries(
            dict.fromkeys(("country_code", "party_id", "id", "uid"), _PART | ascii_parts)
            | {"type": _PART | st.sampled_from(["RFID", "rfid", "APP_USER", "OTHER", "x\n"])}
        ),
        max_size=6,
    ),
    attributes=st.booleans(),
)
def test_a_page_keyed_at_once_gets_each_object_its_own_key(
    module: str,
    version: str,
    partner: PartnerIdentity | None,
    objects: list[dict[str, Any]],
    attributes: bool,
) -> None:
    """page_key_function gives every object object_key's key, or gives up (None) when one of
    them is not the common case; on a page of plain objects it never gives up."""
    page = page_key_function(module, version, partner, attributes=attributes)
    found = page([SimpleNamespace(**o) for o in objects] if attributes else objects)

    def key(obj: dict[str, Any]) -> str | None:
        try:
            return object_key(module, version, obj, partner)
        except ObjectKeyError:
            return None

    expected = [key(o) for o in objects]
    if found is not None:
        assert found == expected
    plain = all(
        isinstance(o.get(f), str) and o[f] and not {"/", "%", "\n"} & set(o[f])
        for o in objects
        for f in ("country_code", "party_id", "id", "uid", "type")
    ) and all(o["type"] in ("RFID", "APP_USER", "OTHER") for o in objects)
    if plain and (partner is not None or version != "2.1.1"):
        assert found == expected
