"""A process's image path, command line and current directory read raw (rawstructs.ParametersLayout)
are exactly what Volatility's ``UNICODE_STRING.get_string`` gives: on every process of forged images,
on every real kernel layout, and on parameters made hostile byte by byte (an odd length, a NUL inside,
a byte-order mark first, an empty string, an unreadable buffer)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from callstack_forensics.volatility.adapter import READ_ERRORS, _str

from .conftest import forge, process_memories, process_memory, writes_through


def _volatility(memory) -> tuple:
    """The three strings as the object path gives them (None where it raises)."""
    try:
        params = memory._proc.get_peb().ProcessParameters
    except READ_ERRORS:
        return "no parameters"
    out = []
    for read in (lambda: params.ImagePathName, lambda: params.CommandLine, lambda: params.CurrentDirectory.DosPath):
        try:
            out.append(_str(read().get_string()))
        except READ_ERRORS:
            out.append(None)
            break  # the path stops at the first string that does not read
    return tuple(out)


def _compare(image: Path, hostile: bool = False) -> int:
    compared = 0
    for memory in process_memories(image):
        try:
            params = memory._proc.get_peb().ProcessParameters
        except READ_ERRORS:
            continue
        assert memory._raw_parameters(params) is not None, "the raw reader must be the one tested"
        expected = _volatility(memory)
        info = memory.process
        assert info.path == expected[0], memory.process.name
        if len(expected) > 1:
            assert info.command_line == expected[1]
        if len(expected) > 2:
            assert (info.working_directory or None) == (expected[2] or None)
        compared += 1
    return compared


def test_every_process(scenario_image):
    assert _compare(scenario_image("benign_desktop")) > 20
    assert _compare(scenario_image("remote_registry_run_key")) > 5


def test_every_real_layout(benign_real_isf_image):
    assert _compare(benign_real_isf_image) > 20


def _patched(folder: Path, edit) -> Path:
    """The benign desktop forged afresh into ``folder`` (sparse, as the forge writes it) with
    ``edit(put, params, layout, layer)`` applied to the explorer's parameters, ``put(virtual
    address, bytes)`` writing through its process's page tables into the file."""
    image = forge("benign_desktop", folder / "patched.raw")
    memory = process_memory(image, "explorer.exe")
    params = int(memory._proc.get_peb().ProcessParameters) & memory._layer.address_mask
    layout = memory._kernel_wide(("parameters_layout", memory._layer.address_mask), memory._parameters_layout)
    with writes_through(image, memory._layer.layer) as put:
        edit(put, params, layout, memory._layer)
    return image


def _buffer(layer, params, field) -> int:
    return struct.unpack("<Q", layer.read(params + field.offset, 8))[0]


def _odd_length(put, params, layout, layer):
    put(params + layout.image_length.offset, struct.pack("<H", 7))


def _nul_inside(put, params, layout, layer):
    put(_buffer(layer, params, layout.command_buffer) + 6, b"\0\0")


def _byte_order_mark(put, params, layout, layer):
    put(_buffer(layer, params, layout.image_buffer), b"\xfe\xff")


def _empty(put, params, layout, layer):
    put(params + layout.command_length.offset, struct.pack("<H", 0))


def _unreadable_buffer(put, params, layout, layer):
    put(params + layout.command_buffer.offset, struct.pack("<Q", 0x10))


def _unreadable_directory(put, params, layout, layer):
    put(params + layout.directory_buffer.offset, struct.pack("<Q", 0x7FF0_0000_0000))


@pytest.mark.parametrize("edit", [_odd_length, _nul_inside, _byte_order_mark, _empty, _unreadable_buffer,
                                  _unreadable_directory], ids=lambda f: f.__name__.strip("_"))
def test_hostile_parameters_read_as_volatility_reads_them(tmp_path, edit):
    copy = _patched(tmp_path, edit)
    memory = process_memory(copy, "explorer.exe")
    expected = _volatility(memory)
    info = memory.process
    assert info.path == expected[0]
    assert info.command_line == (expected[1] if len(expected) > 1 else None)
    assert (info.working_directory or None) == ((expected[2] or None) if len(expected) > 2 else None)
    if edit is _unreadable_buffer:
        assert info.command_line is None and "PEB or process parameters not readable" in memory.notes
    if edit is _unreadable_directory:
        assert info.command_line and info.working_directory is None
