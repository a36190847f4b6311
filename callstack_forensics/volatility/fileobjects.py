"""The file object behind an image mapping: its name, DeletePending and TxF transaction.

Why: phantom DLL hollowing and process doppelgänging map an image section made from a file
opened in a transaction; process ghosting from a file marked for deletion. The FILE_OBJECT the
image VAD's control area points to keeps both: ``DeletePending``, and the transaction in
``FileObjectExtension -> _IOP_FILE_OBJECT_EXTENSION.FoExtPerTypeExtension[
FoExtTypeTransactionParams] -> _TXN_PARAMETER_BLOCK.TransactionObject``. Every offset, and the
extension slot's index (an enumeration value), comes from the image's symbol table.
"""

from __future__ import annotations

from dataclasses import dataclass

from volatility3.framework import constants, exceptions, interfaces

from ..memory.implantstate import MappedFile
from .rawstructs import Field, LayoutUnknown, TypeFields

READ_ERRORS = (exceptions.InvalidAddressException, exceptions.PagedInvalidAddressException)
TRANSACTION_SLOT = "FoExtTypeTransactionParams"
MAX_NAME = 0x1000


@dataclass(frozen=True, slots=True)
class FileObjectLayout:
    delete_pending: Field
    name_length: Field
    name_buffer: Field
    extension: Field  # _FILE_OBJECT.FileObjectExtension
    transaction_slot: Field  # the TXN_PARAMETER_BLOCK pointer in _IOP_FILE_OBJECT_EXTENSION
    transaction_object: Field  # _TXN_PARAMETER_BLOCK.TransactionObject

    @classmethod
    def resolve(cls, context: interfaces.context.ContextInterface, table: str, mask: int) -> "FileObjectLayout":
        file_object = TypeFields(context, table, "_FILE_OBJECT", mask)
        extension = TypeFields(context, table, "_IOP_FILE_OBJECT_EXTENSION", mask)
        block = TypeFields(context, table, "_TXN_PARAMETER_BLOCK", mask)
        index = _enum_value(context, table, "_FILE_OBJECT_EXTENSION_TYPE", TRANSACTION_SLOT)
        pointer = block.need("TransactionObject")
        slot = Field(extension.offset("FoExtPerTypeExtension") + index * pointer.length, pointer.length,
                     mask=pointer.mask)
        return cls(file_object.need("DeletePending"), file_object.need("FileName.Length"),
                   file_object.need("FileName.Buffer"), file_object.need("FileObjectExtension"), slot, pointer)


def _enum_value(context: interfaces.context.ContextInterface, table: str, enum: str, name: str) -> int:
    try:
        choices = context.symbol_space.get_enumeration(table + constants.BANG + enum).choices
    except (exceptions.SymbolError, AttributeError) as exc:
        raise LayoutUnknown(f"no enumeration {enum}") from exc
    if name not in choices:
        raise LayoutUnknown(f"no {name} in {enum}")
    return int(choices[name])


class FileObjectReader:
    """Reads file objects on the kernel layer, each once."""

    def __init__(self, layer: interfaces.layers.DataLayerInterface, layout: FileObjectLayout) -> None:
        self._layer = layer
        self._layout = layout
        self._seen: dict[int, MappedFile] = {}

    def read(self, address: int) -> MappedFile:
        if address not in self._seen:
            self._seen[address] = self._read(address)
        return self._seen[address]

    def _read(self, address: int) -> MappedFile:
        layout = self._layout
        return MappedFile(address, self._name(address), self._flag(address, layout.delete_pending),
                          self._transaction(address))

    def _get(self, address: int, field: Field) -> int | None:
        try:
            return field.get(self._layer.read(address + field.offset, field.length), field.offset)
        except READ_ERRORS:
            return None

    def _flag(self, address: int, field: Field) -> bool | None:
        value = self._get(address, field)
        return None if value is None else bool(value)

    def _name(self, address: int) -> str | None:
        length, buffer = self._get(address, self._layout.name_length), self._get(address, self._layout.name_buffer)
        if not length or not buffer or length > MAX_NAME:
            return None
        try:
            return self._layer.read(buffer, length).decode("utf-16-le", "replace")
        except READ_ERRORS:
            return None

    def _transaction(self, address: int) -> int | None:
        """The transaction object the file was opened in, 0 for none, None when unreadable."""
        extension = self._get(address, self._layout.extension)
        if extension is None:
            return None
        if not extension:
            return 0
        block = self._get(extension, self._layout.transaction_slot)
        if block is None:
            return None
        return self._get(block, self._layout.transaction_object) if block else 0


def reader_for(context: interfaces.context.ContextInterface, table: str,
               layer: interfaces.layers.DataLayerInterface) -> FileObjectReader | None:
    """A reader for this image (``layer`` the kernel's, or its FastReads), or None when its symbol
    table lacks a member (no file evidence then)."""
    try:
        return FileObjectReader(layer, FileObjectLayout.resolve(context, table, layer.address_mask))
    except (LayoutUnknown, exceptions.SymbolError, AttributeError, KeyError, ValueError):
        return None


__all__ = ["FileObjectLayout", "FileObjectReader", "reader_for"]
