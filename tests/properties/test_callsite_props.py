"""The call-site decoder on random bytes: it never raises, and what it verifies is a real call.

A verified site must be a single ``call`` instruction that capstone decodes from exactly the
bytes before the return address (its length and address agree with them), and a genuine call
placed before the return address is always found.
"""

from __future__ import annotations

import struct

import capstone
from hypothesis import given
from hypothesis import strategies as st

from callstack_forensics.engine.callsite import CallSiteDecoder

from .common import PROPERTY, bounded

addresses64 = st.integers(0x10000, (1 << 47) - 1)
addresses32 = st.integers(0x10000, 0xFFFFFFFF)
pointers = st.one_of(st.none(), st.integers(0, (1 << 64) - 1))


def redecode(bits: int, code: bytes, address: int):
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if bits == 64 else capstone.CS_MODE_32)
    return list(cs.disasm(code, address))


def check_site(bits: int, ret: int, leading: bytes, site) -> None:
    """What a verified call site promises, checked against the bytes themselves."""
    if site is None:
        return
    assert 2 <= site.length <= 10 and site.address == ret - site.length
    code = leading[-site.length :]
    assert len(code) == site.length
    insns = redecode(bits, code, site.address)
    assert len(insns) == 1 and insns[0].mnemonic == "call" and insns[0].size == site.length
    assert site.text.startswith("call")
    if code[0] == 0xE8:
        rel = struct.unpack("<i", code[1:5])[0]
        assert site.target == (ret + rel) & ((1 << bits) - 1)


@PROPERTY
@given(st.sampled_from((64, 32)), addresses64, st.binary(max_size=24), pointers)
def test_random_bytes_never_raise_and_any_site_is_a_real_call(bits, ret, leading, pointer):
    decoder = CallSiteDecoder(bits)
    if bits == 32:
        ret &= 0xFFFFFFFF
    with bounded():
        site = decoder.decode(ret, leading, lambda address: pointer)
    check_site(bits, ret, leading, site)


@PROPERTY
@given(addresses64, st.binary(max_size=12), st.integers(-(1 << 31), (1 << 31) - 1))
def test_a_direct_call_before_the_return_address_is_found(ret, prefix, rel):
    leading = prefix + b"\xe8" + struct.pack("<i", rel)
    site = CallSiteDecoder(64).decode(ret, leading, None)
    assert site is not None and site.length == 5
    assert site.target == (ret + rel) & ((1 << 64) - 1)
    check_site(64, ret, leading, site)


_INDIRECT64 = st.sampled_from([
    b"\xff\xd0", b"\x41\xff\xd3", b"\xff\x15\x10\x20\x00\x00", b"\xff\x55\x08", b"\x41\xff\x54\x24\x10",
    b"\xff\x94\x24\x00\x01\x00\x00", b"\x48\xff\x15\x00\x00\x00\x00", b"\xff\x14\x25\x00\x10\x00\x00",
])


@PROPERTY
@given(addresses64, st.binary(max_size=12), _INDIRECT64, pointers)
def test_an_indirect_call_before_the_return_address_is_found(ret, prefix, call, pointer):
    leading = prefix + call
    site = CallSiteDecoder(64).decode(ret, leading, lambda address: pointer)
    assert site is not None and site.length >= len(call)  # longest decode first: never a tail of it
    check_site(64, ret, leading, site)


@PROPERTY
@given(addresses32, st.binary(max_size=16), st.sampled_from([b"\xff\xd0", b"\xff\x15\x00\x13\x40\x00",
                                                                 b"\xff\x55\x08", b"\xe8\x00\x00\x00\x00"]))
def test_32bit_calls(ret, prefix, call):
    leading = prefix + call
    site = CallSiteDecoder(32).decode(ret, leading, lambda address: 0x77001234)
    assert site is not None and site.length >= len(call)
    check_site(32, ret, leading, site)
    if call.startswith(b"\xff\x15") and site.length == len(call):
        assert site.target == 0x77001234  # read through the absolute import slot


@PROPERTY
@given(addresses64, st.binary(min_size=0, max_size=16))
def test_decoding_is_stable_through_the_cache(ret, leading):
    decoder = CallSiteDecoder(64)
    first = decoder.decode(ret, leading, None)
    assert decoder.decode(ret, leading, None) == first
    assert CallSiteDecoder(64).decode(ret, leading, None) == first
