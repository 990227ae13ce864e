"""Dict keys decoded through the key cache: every key comes back exactly as it was written,
however many keys of the same length differ by one byte, share a cache slot or evict each
other, and a str key is never confused with another of the same bytes' length."""

import gc
import sys

import eventpak as ep
import msgpack
import pytest
from eventpak._native import decode_payload, encode_payload


def _keys_differing_by_one_byte(length: int) -> list[str]:
    base = "".join(chr(ord("a") + i % 26) for i in range(length))
    variants = [base]
    for i in range(length):
        variants.append(base[:i] + "Z" + base[i + 1 :])
        variants.append(base[:i] + "é" + base[i + 1 :])  # two UTF-8 bytes: the length changes
    return variants


def test_keys_of_every_cached_length_come_back_exactly() -> None:
    keys = [k for n in range(0, 41) for k in _keys_differing_by_one_byte(n)]
    for _ in range(3):  # the second and third rounds read from the cache
        for key in keys:
            decoded = decode_payload(msgpack.packb({key: len(key)}, use_bin_type=True))
            assert decoded == {key: len(key)}
            assert list(decoded) == [key]


def test_many_distinct_keys_evict_each_other_without_mixups() -> None:
    payload = {f"key-{i:05d}": i for i in range(5000)}
    for _ in range(2):
        assert decode_payload(encode_payload(payload)) == payload


def test_cached_keys_are_equal_and_hash_like_fresh_strings() -> None:
    first = decode_payload(encode_payload({"amount": 1}))
    second = decode_payload(encode_payload({"amount": 2}))
    (k1,), (k2,) = first, second
    assert k1 == k2 == "amount" and hash(k1) == hash("amount")
    assert {"amount": 0}[k2] == 0


def test_key_bytes_that_are_not_utf8_are_refused_even_when_a_key_of_that_length_is_cached() -> None:
    decode_payload(encode_payload({"ab": 1}))
    bad = b"\x81\xa2\xff\xfe\x01"  # {<2 bytes, not UTF-8>: 1}
    with pytest.raises(ep.PayloadNotDecodable, match="not valid UTF-8"):
        decode_payload(bad)


@pytest.mark.parametrize(
    "key",
    ["k" * 40, 1_000, b"raw-key"],  # a str longer than the cache takes, an int, bytes
    ids=["long-str", "int", "bytes"],
)
def test_a_repeated_key_keeps_the_last_value_and_frees_the_repeated_key_object(key) -> None:
    # A map with a repeated key (written by another msgpack writer, or from two distinct but
    # equal keys): the dict keeps the first key object and the last value; the second key
    # object, which nothing holds, must be freed, not leaked once per decode.
    data = b"\x82" + msgpack.packb(key) + b"\x01" + msgpack.packb(key) + b"\x02"
    assert decode_payload(data) == {key: 2}
    decodes = 20_000
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(decodes):
        decode_payload(data)
    gc.collect()
    assert sys.getallocatedblocks() - before < decodes // 10


def test_failed_decodes_free_what_their_errors_held() -> None:
    bad = b"\xa2\xff\xfe"  # a str that is not UTF-8: the error carries a UnicodeDecodeError
    decodes = 20_000
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(decodes):
        with pytest.raises(ep.PayloadNotDecodable):
            decode_payload(bad)
    gc.collect()
    assert sys.getallocatedblocks() - before < decodes // 10
