"""The raw VAD traversal against Volatility's own, also when a node's bytes read only in part.

``vad_nodes`` reads a node's pool tag and both child pointers at once; where that range does not
read whole it reads each alone. Either way it must visit exactly the nodes Volatility's
``MMVAD_SHORT.traverse`` visits, in its order.
"""

from __future__ import annotations

from volatility3.framework import constants, exceptions

from callstack_forensics.volatility.rawstructs import POOL_TAG_BEFORE_NODE, VadLayout, vad_nodes
from callstack_forensics.volatility.session import VolatilitySettings, open_image


class _Refusing:
    """A layer that refuses every read touching one of ``holes`` (byte addresses)."""

    def __init__(self, layer, holes: set[int]):
        self._layer = layer
        self.holes = holes
        self.address_mask = layer.address_mask

    def read(self, offset: int, length: int, pad: bool = False) -> bytes:
        if any(offset <= hole < offset + length for hole in self.holes):
            raise exceptions.InvalidAddressException(self._layer.name, offset, "refused by the test")
        return self._layer.read(offset, length, pad)


def _trees(image):
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    for opened in source.processes():
        memory = opened.memory
        if memory is None:
            continue
        root = memory._proc.get_vad_root()
        layer = memory._reads_on(root.vol.layer_name)
        type_name = root.vol.type_name.split(constants.BANG)[-1]
        layout = VadLayout.resolve(memory._context, memory._kernel.symbol_table_name, type_name, layer.address_mask)
        yield opened.info.name, root, layer, layout


def test_the_nodes_are_volatilitys_own(scenario_image):
    compared = 0
    for name, root, layer, layout in _trees(scenario_image("sleep_obfuscation_contexts")):
        expected = [int(vad.vol.offset) for vad in root.traverse()]
        assert [address for address, _kind in vad_nodes(layer, int(root.vol.offset), layout)] == expected, name
        compared += len(expected)
    assert compared > 100


def test_a_node_read_only_in_part_loses_what_volatility_loses(scenario_image):
    """A hole in a node's right pointer: the node stays, its right subtree is gone (an unreadable
    child is no child). A hole between its tag and its pointers (the combined read fails, each
    part still reads): nothing is lost."""
    checked = 0
    for name, root, layer, layout in _trees(scenario_image("sleep_obfuscation_contexts")):
        whole = vad_nodes(layer, int(root.vol.offset), layout)
        if len(whole) < 8:
            continue
        node = whole[len(whole) // 2][0]
        right = layout.right.get(layer.read(node + layout.right.offset, layout.right.length), layout.right.offset)
        gap = [a for a in range(node - POOL_TAG_BEFORE_NODE + 4, node + min(layout.left.offset, layout.right.offset))]
        if gap:
            assert vad_nodes(_Refusing(layer, set(gap)), int(root.vol.offset), layout) == whole, name
        cut = vad_nodes(_Refusing(layer, {node + layout.right.offset}), int(root.vol.offset), layout)
        lost = {a for a, _ in whole} - {a for a, _ in cut}
        assert node in {a for a, _ in cut}
        assert (right in lost) == bool(right), name
        assert [n for n in whole if n[0] not in lost] == cut
        checked += 1
    assert checked


class _Counting:
    """A layer that counts the reads made through it."""

    def __init__(self, layer):
        self._layer = layer
        self.name = layer.name
        self.reads = 0

    def read(self, offset: int, length: int, pad: bool = False) -> bytes:
        self.reads += 1
        return self._layer.read(offset, length, pad)


def test_a_files_name_and_object_are_read_once_per_subsection(scenario_image):
    """Every process maps the same DLLs through the same image sections: a VAD's file name and
    FILE_OBJECT are Volatility's, and a VAD whose subsection was seen before costs one read, its own."""
    image = scenario_image("sleep_obfuscation_contexts")
    layout, counting, named, again = None, None, 0, 0
    for name, root, layer, own_layout in _trees(image):
        layout = layout or own_layout  # one layout for the image, as the adapter keeps it
        counting = counting if counting is not None and counting._layer is layer else _Counting(layer)
        table = root.vol.type_name.split(constants.BANG)[0]
        for address, kind in vad_nodes(layer, int(root.vol.offset), layout):
            if kind != "long":
                continue
            before = counting.reads
            seen = len(layout._files)
            vad = layout.read(counting, address, kind)
            obj = root._context.object(table + constants.BANG + "_MMVAD", layer_name=root.vol.layer_name,
                                       offset=address, native_layer_name=root.vol.native_layer_name)
            theirs = obj.get_file_name()
            assert vad.file_name == (theirs if isinstance(theirs, str) else None), (name, hex(address))
            named += vad.file_name is not None
            if len(layout._files) == seen:  # a subsection seen before: the node's own read only
                assert counting.reads - before == 1, (name, hex(address))
                again += 1
    assert named > 50 and again > 50
