"""Reading the two facts roost needs from an ELF file's headers: its machine and its program interpreter.

Only the header and the program headers are read (no section parsing, nothing executed), so a
file from an untrusted image is safe to look at. Used to judge an image's python3 and to find
the dynamic loader the python bundle must carry.

Imports: the standard library only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["MACHINE_X86_64", "ElfInfo", "read_elf"]

MACHINE_X86_64 = 62
_PT_INTERP = 3
_MAX_INTERP = 4096
_MAX_PHNUM = 256


@dataclass(frozen=True)
class ElfInfo:
    """`machine` is e_machine (62: x86-64); `interpreter` the PT_INTERP path (None: static or a library)."""

    machine: int
    is_64bit: bool
    interpreter: str | None


def read_elf(path: Path) -> ElfInfo | None:
    """The machine and interpreter of the ELF file at `path`; None when it is not a readable ELF file.

    `path` is opened as given: callers resolve links inside an image themselves.
    """
    try:
        with open(path, "rb") as fh:
            ident = fh.read(64)
            if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
                return None
            wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
            machine = struct.unpack_from(f"{order}H", ident, 18)[0]
            if wide:
                phoff, phentsize, phnum = (
                    struct.unpack_from(f"{order}Q", ident, 32)[0],
                    *struct.unpack_from(f"{order}HH", ident, 54),
                )
            else:
                phoff, phentsize, phnum = (
                    struct.unpack_from(f"{order}I", ident, 28)[0],
                    *struct.unpack_from(f"{order}HH", ident, 42),
                )
            return ElfInfo(machine, wide, _interpreter(fh, order, wide, phoff, phentsize, min(phnum, _MAX_PHNUM)))
    except (OSError, struct.error):
        return None


def _interpreter(fh: BinaryIO, order: str, wide: bool, phoff: int, phentsize: int, phnum: int) -> str | None:
    for index in range(phnum):
        fh.seek(phoff + index * phentsize)
        header = fh.read(phentsize)
        if len(header) < (56 if wide else 32):
            return None
        if struct.unpack_from(f"{order}I", header, 0)[0] != _PT_INTERP:
            continue
        if wide:
            offset, size = struct.unpack_from(f"{order}Q", header, 8)[0], struct.unpack_from(f"{order}Q", header, 32)[0]
        else:
            offset, size = struct.unpack_from(f"{order}I", header, 4)[0], struct.unpack_from(f"{order}I", header, 16)[0]
        fh.seek(offset)
        raw = fh.read(min(size, _MAX_INTERP))
        return raw.split(b"\0", 1)[0].decode(errors="replace") or None
    return None
