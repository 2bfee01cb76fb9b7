"""Decoding Feast's stored values once per distinct serialization."""

from __future__ import annotations

from datetime import UTC, datetime

from feast.protos.feast.types.Value_pb2 import StringList, Value
from google.protobuf.timestamp_pb2 import Timestamp

from serving.online.view_reads import Decoder


def test_decoder_gives_what_python_value_gives_and_lists_apart() -> None:
    decoder = Decoder()
    tags = Value(string_list_val=StringList(val=["a", "b"])).SerializeToString()

    first, second = decoder.value(tags), decoder.value(tags)

    assert first == second == ["a", "b"]
    assert first is not second, "two members' lists must not be one object"
    assert decoder.value(Value(double_val=2.5).SerializeToString()) == 2.5
    assert decoder.value(Value(int64_val=0).SerializeToString()) == 0, "a set zero is a zero"
    assert decoder.value(Value(int64_val=7).SerializeToString()) == 7
    assert decoder.value(Value(bool_val=True).SerializeToString()) is True
    assert decoder.value(Value(string_val="gold").SerializeToString()) == "gold"
    assert decoder.value(b"") is None and decoder.value(None) is None, "absent: missing"


def test_decoder_reads_redis_timestamps_as_feast() -> None:
    stamp = Timestamp(seconds=1_780_000_000, nanos=500_000_000).SerializeToString()
    expected = datetime.fromtimestamp(1_780_000_000.5, tz=UTC)
    assert Decoder().redis_time(stamp) == expected
