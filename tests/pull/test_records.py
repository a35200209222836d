"""From a page's objects to Kafka records (`producer.pull.records.MessageBuilder`), pure.

The record contract consumers rely on: key = `schemas.keys.object_key`, value = the partner's
object as compact JSON (unknown fields kept), headers naming version, module, partner, pull and
position; objects that fail validation or have no key become dead letters and the page goes on.
Each page is read by the page reader (`producer.ocpi.paging.reader`) first, as a pull reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from producer.kafka.records import OutMessage
from producer.ocpi.paging.reader import PageReader
from producer.pull.records import MAX_OBJECT_BYTES, MessageBuilder, PageMessages
from sandbox.generator import MODULES, ObjectFactory, Party
from schemas import headers as h
from schemas.keys import PartnerIdentity, object_key
from schemas.records import DeadLetter

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ocpi"
PARTNER = PartnerIdentity("NL", "SBX")
URL = "https://partner.example/ocpi/emsp/2.2.1/tokens?offset=40&limit=10"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# One spec example per module and version, with the key it must get.
EXAMPLES = [
    ("2.2.1", "tokens", "token_example_2_full_rfid.json", "DE/TNM/12345678905880/RFID"),
    ("2.2.1", "locations", "location_example.json", "BE/BEC/LOC1"),
    ("2.2.1", "tariffs", "tariff_1_simple_2hour.json", "DE/ALL/12"),
    ("2.2.1", "sessions", "session_example_1_simple_start.json", "NL/STK/101"),
    ("2.2.1", "cdrs", "cdr_example.json", "BE/BEC/12345"),
    (
        "2.3.0",
        "tokens",
        "token_example_1_app_user.json",
        "DE/TNM/BDF21BCE-FC97-11E8-8EB2-F2801F1B9FD1/APP_USER",
    ),
    # 2.1.1 objects carry no owner: the partner identity is theirs.
    ("2.1.1", "tokens", "token_example.json", "NL/SBX/012345678/RFID"),
    ("2.1.1", "locations", "location_example.json", "NL/SBX/LOC1"),
    ("2.1.1", "tariffs", "tariff_example_1_simple_2_euro_per_hour.json", "NL/SBX/12"),
    ("2.1.1", "sessions", "session_example_1_simple_start.json", "NL/SBX/101"),
    ("2.1.1", "cdrs", "cdr_example.json", "NL/SBX/12345"),
]


def example(version: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((FIXTURES / version / name).read_bytes())
    return loaded


class Pages:
    """A page's objects, read by the page reader and built into records."""

    def __init__(self, module: str, version: str, identity: PartnerIdentity | None) -> None:
        self.reader = PageReader(version, module, identity)
        self.builder = MessageBuilder(
            partner="sbx", module=module, ocpi_version=version, pull_id="pull-7"
        )

    def build(
        self,
        items: list[Any],
        first_offset: int,
        url: str,
        traceparent: str | None,
        window: int | None = None,
    ) -> PageMessages:
        values = [orjson.dumps(item) for item in items]  # as the envelope hands them over
        read = self.reader.read(values)
        return self.builder.build(read, first_offset, url, traceparent, window)


def builder(
    module: str = "tokens",
    version: str = "2.2.1",
    identity: PartnerIdentity | None = PARTNER,
) -> Pages:
    return Pages(module, version, identity)


def tokens(count: int, start: int = 0) -> list[dict[str, Any]]:
    factory = ObjectFactory("tokens", 1, Party())
    return [factory.render(i, "2.2.1", 1_700_000_000_000 + i * 1000) for i in range(start, count)]


def headers(message: OutMessage) -> dict[str, bytes]:
    names = [name for name, _ in message.record_headers()]
    assert len(names) == len(set(names)), "a header repeats"
    return dict(message.record_headers())


def dead_letter(message: OutMessage) -> DeadLetter:
    assert message.value is not None
    return DeadLetter.model_validate_json(message.value)


@pytest.mark.parametrize(("version", "module", "name", "key"), EXAMPLES)
def test_spec_examples_are_keyed_as_schemas_keys_says(
    version: str, module: str, name: str, key: str
) -> None:
    obj = example(version, name)
    page = builder(module, version).build([obj], 0, URL, None)
    assert page.keys == [key] == [object_key(module, version, obj, PARTNER)]
    assert [m.key for m in page.objects] == [key.encode()]
    assert page.dead_letters == []


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
@pytest.mark.parametrize("module", MODULES)
def test_generated_objects_are_keyed_as_schemas_keys_says(module: str, version: str) -> None:
    factory = ObjectFactory(module, 3, Party("de", "abc"))  # lower case: CiStrings upper-cased
    items = [factory.render(i, version, 1_700_000_000_000 + i * 1000) for i in range(30)]
    page = builder(module, version).build(items, 0, URL, None)
    assert page.keys == [object_key(module, version, item, PARTNER) for item in items]
    assert [m.key.decode() for m in page.objects] == page.keys
    assert page.dead_letters == []


def test_keys_encode_separators_and_upper_case_ci_strings() -> None:
    item = tokens(1)[0]
    item.update(country_code="nl", party_id="sbx", uid="ab/c%d", type="RFID")
    page = builder().build([item], 0, URL, None)
    assert page.keys == ["NL/SBX/AB%2FC%25D/RFID"] == [object_key("tokens", "2.2.1", item, None)]


def test_every_record_names_version_module_partner_pull_and_position() -> None:
    page = builder().build(tokens(3), 40, URL, None)
    for position, message in enumerate(page.objects):
        assert message.record_headers() == [
            (h.OCPI_VERSION, b"2.2.1"),
            (h.OCPI_MODULE, b"tokens"),
            (h.PARTNER, b"sbx"),
            (h.PULL_ID, b"pull-7"),
            (h.SOURCE_OFFSET, str(40 + position).encode()),
        ]
        assert message.partition_key is None  # partitioned by its key, as Kafka would


def test_a_pages_records_share_one_list_of_headers_and_carry_only_their_offset() -> None:
    # (Memory: a record waiting for its batch holds no header list of its own.)
    made = builder()
    first = made.build(tokens(3), 0, URL, TRACEPARENT, window=1)
    second = made.build(tokens(2), 3, URL, None, window=2)
    assert len({id(m.headers) for m in first.objects}) == 1
    assert [m.number for m in first.objects + second.objects] == [0, 1, 2, 3, 4]
    # Each page has its own list: another page's window and trace do not leak into it.
    assert headers(second.objects[0])[h.PULL_WINDOW] == b"2"
    assert h.TRACEPARENT not in headers(second.objects[0])
    assert headers(first.objects[2])[h.PULL_WINDOW] == b"1"
    assert headers(first.objects[2])[h.SOURCE_OFFSET] == b"2"


def test_the_page_span_travels_in_a_traceparent_header() -> None:
    page = builder().build(tokens(2), 0, URL, TRACEPARENT, window=3)
    assert [headers(m)[h.TRACEPARENT] for m in page.objects] == [TRACEPARENT.encode()] * 2
    assert set(headers(page.objects[0])) == set(h.ALL)
    assert headers(page.objects[0])[h.PULL_WINDOW] == b"3"


def test_the_value_is_the_object_as_sent_in_compact_json() -> None:
    item = example("2.2.1", "token_example_2_full_rfid.json")
    # Unknown fields (partners extend objects; 2.3.0 allows it) and non-ASCII text are kept, in
    # the partner's order.
    item["x_vendor"] = {"tier": "gold", "flags": [1, 2.5, None, True]}
    item["issuer"] = "Ünïcødé Mobility – Zürich"
    page = builder().build([item], 0, URL, None)
    (message,) = page.objects
    assert message.value == orjson.dumps(item)
    assert b'": ' not in message.value  # compact: no whitespace between tokens
    assert b', "' not in message.value
    assert list(orjson.loads(message.value)) == list(item)
    assert "Ünïcødé".encode() in message.value


def test_an_invalid_object_becomes_a_dead_letter_under_its_key() -> None:
    items = tokens(3)
    items[1]["whitelist"] = "SOMETIMES"
    page = builder().build(items, 20, URL, TRACEPARENT)
    key = object_key("tokens", "2.2.1", items[1], None)
    assert page.keys == [object_key("tokens", "2.2.1", i, None) for i in (items[0], items[2])]
    (message,) = page.dead_letters
    assert message.key == key.encode()
    assert message.record_headers() == [
        (h.OCPI_VERSION, b"2.2.1"),
        (h.OCPI_MODULE, b"tokens"),
        (h.PARTNER, b"sbx"),
        (h.PULL_ID, b"pull-7"),
        (h.TRACEPARENT, TRACEPARENT.encode()),
        (h.SOURCE_OFFSET, b"21"),
    ]
    letter = dead_letter(message)
    assert (letter.pull_id, letter.partner, letter.module, letter.ocpi_version) == (
        "pull-7",
        "sbx",
        "tokens",
        "2.2.1",
    )
    assert letter.key == key
    assert letter.source_url == URL
    assert letter.source_offset == 21
    assert letter.object == items[1]  # exactly as sent
    assert len(letter.errors) == 1
    assert letter.errors[0].startswith("whitelist: ")
    assert letter.failed_at.tzinfo is not None
    assert page.dead_identities == [key]
    assert page.dead_keys == [key]


def test_an_object_without_a_key_is_dead_lettered_under_its_position() -> None:
    items = tokens(2)
    del items[0]["uid"]
    page = builder().build(items, 100, URL, None)
    (message,) = page.dead_letters
    assert message.key == b"sbx/tokens/invalid/pull-7/100"
    letter = dead_letter(message)
    assert letter.key is None
    assert letter.source_offset == 100
    assert "cannot build key: tokens uid is missing" in letter.errors
    assert any(e.startswith("uid: ") for e in letter.errors)  # and what validation said
    # Without a key it is known by its JSON (the window still counts it as received).
    assert page.dead_identities == [orjson.dumps(items[0]).decode()]
    assert page.dead_keys == []
    assert len(page.objects) == 1


@pytest.mark.parametrize("junk", ["a string", 42, None, [1, 2], True])
def test_a_data_item_that_is_not_an_object_is_dead_lettered(junk: Any) -> None:
    page = builder().build([*tokens(1), junk], 0, URL, None)
    assert len(page.objects) == 1
    (message,) = page.dead_letters
    letter = dead_letter(message)
    assert letter.object == junk
    assert letter.key is None
    assert letter.errors


def test_2_1_1_objects_without_a_partner_identity_are_dead_letters_not_a_crash() -> None:
    item = example("2.1.1", "token_example.json")
    page = builder("tokens", "2.1.1", identity=None).build([item, item], 0, URL, None)
    assert page.objects == []
    assert len(page.dead_letters) == 2
    assert all(
        any("partner identity is required" in e for e in dead_letter(m).errors)
        for m in page.dead_letters
    )


def test_duplicate_keys_in_a_page_are_all_produced_in_order_and_counted() -> None:
    first, second = tokens(2)
    changed = {**first, "whitelist": "NEVER"}
    page = builder().build([first, second, changed, first], 0, URL, None)
    key_first = object_key("tokens", "2.2.1", first, None)
    assert page.keys == [key_first, page.keys[1], key_first, key_first]
    # Compaction keeps the last in page order, which is the partner's latest word.
    assert [m.value for m in page.objects] == [
        orjson.dumps(o) for o in (first, second, changed, first)
    ]
    assert page.duplicate_keys == 2


def test_records_stay_aligned_with_their_page_positions() -> None:
    items = tokens(6)
    items[1]["valid"] = "yes"  # invalid, keyed
    del items[3]["country_code"]  # invalid, no key
    page = builder().build(items, 500, URL, None)
    assert page.positions == [0, 2, 4, 5]
    assert page.keys == [object_key("tokens", "2.2.1", items[i], None) for i in page.positions]
    assert [m.value for m in page.objects] == [orjson.dumps(items[i]) for i in page.positions]
    assert [headers(m)[h.SOURCE_OFFSET] for m in page.objects] == [b"500", b"502", b"504", b"505"]
    assert [dead_letter(m).source_offset for m in page.dead_letters] == [501, 503]
    assert page.duplicate_keys == 0


def test_an_empty_page_makes_no_records() -> None:
    page = builder().build([], 0, URL, None)
    assert (page.objects, page.dead_letters, page.keys, page.positions) == ([], [], [], [])
    assert page.duplicate_keys == 0


def test_an_object_too_large_for_one_record_is_dead_lettered_without_its_body() -> None:
    first, second = tokens(2)
    huge = {**second, "extra": "x" * MAX_OBJECT_BYTES}
    messages = builder().build([first, huge], 0, URL, None)
    assert len(messages.objects) == 1
    (dead,) = messages.dead_letters
    record = orjson.loads(dead.value or b"")
    assert record["object"] is None
    assert "exceeds" in record["errors"][0]
    assert len(dead.value or b"") < 10_000


def test_last_updated_travels_with_each_record_as_epoch_seconds() -> None:
    items = tokens(4)
    items[1]["last_updated"] = "2023-11-14 22:13:21+00:00"  # a dialect: read canonically
    items[2]["valid"] = "yes"  # a dead letter: not a record
    page = builder().build(items, 0, URL, None)
    assert page.positions == [0, 1, 3]
    assert page.last_updated == [1_700_000_000, 1_700_000_001, 1_700_000_003]


def test_a_page_of_valid_objects_and_one_with_a_dead_letter_make_the_same_records() -> None:
    """The all-valid page takes a shorter way to its records: the same records."""
    items = tokens(5)
    whole = builder().build(items, 7, URL, TRACEPARENT)
    with_junk = builder().build([*items, 17], 7, URL, TRACEPARENT)
    assert whole.objects == with_junk.objects
    assert (whole.keys, whole.positions, whole.last_updated) == (
        with_junk.keys,
        with_junk.positions,
        with_junk.last_updated,
    )
    assert len(with_junk.dead_letters) == 1
