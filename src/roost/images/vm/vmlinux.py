"""Turning a compressed kernel (bzImage, `boot/vmlinuz-*`) into the uncompressed ELF `vmlinux` Firecracker boots.

A bzImage is a real-mode setup stub, a small decompressor and the kernel
ELF, compressed. Its setup header says where the compressed payload starts
and how long it is; without a header (or if that fails) the image is
scanned for every compressor's magic, the way the kernel's own
`scripts/extract-vmlinux` does. Debian's 6.1 cloud kernel uses LZ4 (the
legacy frame format), decoded here in pure Python; gzip, xz, lzma and bzip2
use the standard library, zstd the `zstd` program. The result must be an
ELF image.

Imports: errors and the standard library.
"""

from __future__ import annotations

import bz2
import lzma
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable

from roost.errors import ImageError

ELF_MAGIC = b"\x7fELF"
_LZ4_LEGACY_MAGIC = 0x184C2102
# Short magics (lzma's, bzip2's) also occur by chance; give up on one after this many false starts.
_SCAN_ATTEMPTS = 32


def _gunzip(data: bytes) -> bytes:
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)


def _unxz(data: bytes) -> bytes:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)


def _unlzma(data: bytes) -> bytes:
    return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)


def _bunzip2(data: bytes) -> bytes:
    return bz2.BZ2Decompressor().decompress(data)


def _unzstd(data: bytes) -> bytes:
    program = shutil.which("zstd")
    if program is None:
        raise ValueError("the kernel is zstd-compressed and the zstd program is not installed")
    result = subprocess.run([program, "-dcq"], input=data, capture_output=True, check=False)
    if not result.stdout:
        raise ValueError(result.stderr.decode(errors="replace").strip() or "zstd produced nothing")
    return result.stdout


def lz4_block(src: bytes, out: bytearray) -> None:
    """Append the decoding of one raw LZ4 block to `out` (matches may reach into earlier output).

    Raises:
        ValueError: a corrupt block.
    """
    i, end = 0, len(src)
    try:
        while i < end:
            token = src[i]
            i += 1
            literals = token >> 4
            if literals == 15:
                while True:
                    extra = src[i]
                    i += 1
                    literals += extra
                    if extra != 255:
                        break
            if literals:
                out += src[i : i + literals]
                i += literals
            if i >= end:
                return  # the last sequence carries literals only
            offset = src[i] | (src[i + 1] << 8)
            i += 2
            length = token & 15
            if length == 15:
                while True:
                    extra = src[i]
                    i += 1
                    length += extra
                    if extra != 255:
                        break
            length += 4
            start = len(out) - offset
            if offset == 0 or start < 0:
                raise ValueError("LZ4 match points before the start of the output")
            if length <= offset:
                out += out[start : start + length]
            else:  # an overlapping match repeats the last `offset` bytes
                pattern = bytes(out[start:])
                out += (pattern * (length // offset + 1))[:length]
    except IndexError:
        raise ValueError("truncated LZ4 block") from None


def _unlz4_legacy(data: bytes) -> bytes:
    """The LZ4 legacy frame the kernel build uses (`lz4 -l`): magic, then (size, block)* to the end."""
    if len(data) < 4 or struct.unpack_from("<I", data)[0] != _LZ4_LEGACY_MAGIC:
        raise ValueError("not an LZ4 legacy frame")
    out = bytearray()
    i = 4
    while i + 4 <= len(data):
        size = struct.unpack_from("<I", data, i)[0]
        if size == _LZ4_LEGACY_MAGIC:  # concatenated frames
            i += 4
            continue
        if size == 0 or i + 4 + size > len(data):
            break  # the 4-byte uncompressed size the kernel appends, or trailing padding
        lz4_block(data[i + 4 : i + 4 + size], out)
        i += 4 + size
    return bytes(out)


# (name, magic, decompressor), in the order extract-vmlinux tries them.
DECOMPRESSORS: tuple[tuple[str, bytes, Callable[[bytes], bytes]], ...] = (
    ("gzip", b"\x1f\x8b\x08", _gunzip),
    ("xz", b"\xfd7zXZ\x00", _unxz),
    ("bzip2", b"BZh", _bunzip2),
    ("lzma", b"\x5d\x00\x00\x00", _unlzma),
    ("lz4", struct.pack("<I", _LZ4_LEGACY_MAGIC), _unlz4_legacy),
    ("zstd", b"\x28\xb5\x2f\xfd", _unzstd),
)


def _payload_from_header(image: bytes) -> bytes | None:
    """The compressed payload a bzImage's setup header points at (boot protocol >= 2.08), if any."""
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        return None
    version = struct.unpack_from("<H", image, 0x206)[0]
    if version < 0x0208:
        return None
    setup_sects = image[0x1F1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if length == 0 or start + length > len(image):
        return None
    return image[start : start + length]


def _decompress_at(data: bytes) -> tuple[str, bytes] | None:
    for name, magic, decompress in DECOMPRESSORS:
        if data.startswith(magic):
            try:
                result = decompress(data)
            except (ValueError, OSError, EOFError, lzma.LZMAError, zlib.error):
                return None
            return (name, result) if result.startswith(ELF_MAGIC) else None
    return None


def extract_vmlinux(image: bytes) -> tuple[str, bytes]:
    """(compression name, uncompressed ELF kernel) from a bzImage (or an already-uncompressed vmlinux).

    Raises:
        ImageError: vmlinux_not_found when no payload decompresses to an ELF image.
    """
    if image.startswith(ELF_MAGIC):
        return "none", image
    payload = _payload_from_header(image)
    if payload is not None:
        found = _decompress_at(payload)
        if found is not None:
            return found
    for _name, magic, _decompress in DECOMPRESSORS:
        position = image.find(magic)
        attempts = 0
        while position != -1 and attempts < _SCAN_ATTEMPTS:
            found = _decompress_at(image[position:])
            if found is not None:
                return found
            attempts += 1
            position = image.find(magic, position + 1)
    raise ImageError(
        "no compressed ELF kernel found in the kernel image",
        code="vmlinux_not_found",
        hint="the kernel package may use a compression roost does not know; report it",
    )
