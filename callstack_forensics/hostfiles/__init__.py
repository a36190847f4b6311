"""The host's files beside the memory image (``--files DIR``): hashes, PE details, signatures.

A responder usually collects the disk with the memory (a mounted volume, or a triage
collection such as KAPE's or Velociraptor's, which keep the original paths). A file is used for
a process image or module only when it is that module: same path, same SizeOfImage and PE
timestamp; any other file at that path is refused with a note.
"""

from .collection import FileCollection
from .facts import FileFacts, HostFiles

__all__ = ["FileCollection", "FileFacts", "HostFiles"]
