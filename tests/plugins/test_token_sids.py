"""A token's user SID read raw (``token.user_sid``) is exactly what Volatility's ``TOKEN.get_sids``
gives first: on every process and impersonating thread of forged images, on every real kernel
layout, and on tokens made hostile byte by byte (an unreadable first group, a bad revision, too
many sub-authorities, a group count of 0xFFFF, an authority whose high bytes are set, no
sub-authority at all)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from callstack_forensics.volatility.adapter import token_user

from .conftest import forge, process_memories, process_memory, writes_through


def _token(memory):
    return memory._proc.Token.dereference().cast("_TOKEN")


def _compare(image: Path) -> int:
    compared = 0
    for memory in process_memories(image):
        assert memory._sids_layout is not None, "the raw reader must be the one tested"
        token = _token(memory)
        assert memory._token_user(token) == token_user(token), memory.process.name
        compared += 1
    return compared


def test_every_process_and_impersonated_thread(scenario_image):
    assert _compare(scenario_image("benign_desktop")) > 20
    image = scenario_image("remote_registry_run_key")
    assert _compare(image) > 5
    impersonating = 0
    for memory in process_memories(image):
        for thread in memory.threads():
            if thread.impersonation_sid:
                impersonating += 1
                ethread = memory._context.object(memory._kernel.symbol_table_name + "!_ETHREAD",
                                                 layer_name=memory._kernel.layer_name, offset=thread.object_address)
                pointer = int(ethread.ClientSecurity.ImpersonationData) & ~0x7
                token = memory._context.object(memory._kernel.symbol_table_name + "!_TOKEN",
                                               layer_name=memory._kernel.layer_name, offset=pointer)
                assert thread.impersonation_sid == token_user(token)
    assert impersonating


def test_every_real_layout(benign_real_isf_image):
    assert _compare(benign_real_isf_image) > 20


def _patched(folder: Path, edit) -> Path:
    """The benign desktop forged afresh into ``folder`` (sparse, as the forge writes it) with
    ``edit(memory, token, put)`` applied to the explorer's token, ``put(virtual address, bytes)``
    writing through the kernel's page tables into the file."""
    image = forge("benign_desktop", folder / "patched.raw")
    memory = process_memory(image, "explorer.exe")
    with writes_through(image, memory._context.layers[memory._kernel.layer_name]) as put:
        edit(memory, _token(memory), put)
    return image


def _first_sid(memory, token) -> int:
    layout = memory._sids_layout
    groups = struct.unpack("<Q", memory._kernel_layer.read(int(token.vol.offset) + layout.groups, 8))[0]
    return struct.unpack("<Q", memory._kernel_layer.read(groups + layout.sid, 8))[0], groups


def _unreadable_first(memory, token, put):
    _, groups = _first_sid(memory, token)
    put(groups + memory._sids_layout.sid, struct.pack("<Q", 0))


def _revision(memory, token, put):
    put(_first_sid(memory, token)[0] + memory._sids_layout.revision, b"\x02")


def _many_subs(memory, token, put):
    put(_first_sid(memory, token)[0] + memory._sids_layout.sub_count, b"\x10")


def _no_subs(memory, token, put):
    put(_first_sid(memory, token)[0] + memory._sids_layout.sub_count, b"\x00")


def _authority(memory, token, put):
    put(_first_sid(memory, token)[0] + memory._sids_layout.authority, bytes([0, 0, 0, 0x12, 0x34, 5]))


def _count(memory, token, put):
    put(int(token.vol.offset) + memory._sids_layout.count, struct.pack("<I", 0xFFFF))


@pytest.mark.parametrize("edit", [_unreadable_first, _revision, _many_subs, _no_subs, _authority, _count],
                         ids=lambda f: f.__name__.strip("_"))
def test_hostile_tokens_read_as_volatility_reads_them(tmp_path, edit):
    copy = _patched(tmp_path, edit)
    memory = process_memory(copy, "explorer.exe")
    token = _token(memory)
    expected = token_user(token)
    assert memory._token_user(token) == expected
    assert memory.process.user_sid == expected
    if edit in (_revision, _many_subs, _count):
        assert expected is None
    if edit is _authority:
        assert expected.startswith("S-1-5-"), "Volatility prints the authority's last byte"
