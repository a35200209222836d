"""lz4 batches: compressed at LZ4's fast level (as the Kafka Java producer does), same format.

The end-to-end tests read every produced batch back from the broker; these pin the encoder swap
itself, so an aiokafka upgrade that renames its encoder fails here rather than silently going slow.
"""

from __future__ import annotations

import cramjam
import orjson
import pytest
from aiokafka.record import default_records as py_default_records
from aiokafka.record._crecords import default_records as c_default_records

from producer.kafka.compression import fast_lz4_encode
from producer.kafka.output import KafkaOutput
from sandbox.generator import ObjectFactory, Party

LZ4 = 0x03


def token_messages(count: int) -> list[tuple[bytes, bytes]]:
    factory = ObjectFactory("tokens", 1, Party())
    return [
        (f"NL/SBX/{i}/RFID".encode(), orjson.dumps(factory.render(i, "2.2.1", 1_700_000_000_000)))
        for i in range(count)
    ]


def test_building_the_output_makes_both_batch_builders_use_the_fast_encoder() -> None:
    KafkaOutput("127.0.0.1:9")  # built, never started: the swap happens where the producer is
    assert c_default_records.lz4_encode is fast_lz4_encode
    assert py_default_records.lz4_encode is fast_lz4_encode  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", [c_default_records, py_default_records])
def test_an_lz4_batch_round_trips_through_aiokafka(module: object) -> None:
    builder = module.DefaultRecordBatchBuilder(  # type: ignore[attr-defined]
        magic=2,
        compression_type=LZ4,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    messages = token_messages(2000)
    for offset, (key, value) in enumerate(messages):
        builder.append(offset, timestamp=None, key=key, value=value, headers=[("h", b"1")])
    raw = bytes(builder.build())
    batch = c_default_records.DefaultRecordBatch(bytearray(raw))
    assert batch.compression_type == LZ4
    read = [(record.key, record.value) for record in batch]
    assert read == messages
    assert len(raw) * 4 < sum(len(k) + len(v) for k, v in messages)


def test_the_frame_is_plain_lz4_with_independent_blocks() -> None:
    payload = b"".join(value for _, value in token_messages(3000))
    frame = fast_lz4_encode(payload)
    assert bytes(cramjam.lz4.decompress(frame)) == payload
    # FLG byte: version 01, block independence set, no content checksum (what Kafka reads).
    flags = frame[4]
    assert flags >> 6 == 0b01
    assert flags & 0b0010_0000
    assert not flags & 0b0000_0100
