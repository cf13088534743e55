"""Extracting vmlinux from a bzImage: the setup header's payload, a magic scan, and every compression the kernel uses."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import struct
import subprocess

import pytest

from roost.errors import ImageError
from roost.images.vm.vmlinux import extract_vmlinux, lz4_block

ELF = b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 40 + b"kernel text" * 100


def bzimage(payload: bytes, *, header: bool = True, junk: bytes = b"\x00setup code\x90" * 40) -> bytes:
    """A bzImage-shaped blob: setup sectors, then a decompressor stub, then `payload`, then its size."""
    setup_sects = 3
    setup = bytearray((setup_sects + 1) * 512)
    stub = junk
    if header:
        setup[0x1F1] = setup_sects
        setup[0x202:0x206] = b"HdrS"
        struct.pack_into("<H", setup, 0x206, 0x020F)
        struct.pack_into("<II", setup, 0x248, len(stub), len(payload) + 4)
    return bytes(setup) + stub + payload + struct.pack("<I", len(ELF))


def kernel_lzma(data: bytes) -> bytes:
    """`lzma -9`, as the kernel build runs it: a 64 MiB dictionary, hence the 5d 00 00 00 magic."""
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 26}])


def lz4_literals(data: bytes) -> bytes:
    """A valid LZ4 block holding `data` as literals only."""
    length = len(data)
    if length < 15:
        return bytes([length << 4]) + data
    rest = length - 15
    return bytes([0xF0]) + b"\xff" * (rest // 255) + bytes([rest % 255]) + data


def lz4_legacy(data: bytes) -> bytes:
    block = lz4_literals(data)
    return struct.pack("<I", 0x184C2102) + struct.pack("<I", len(block)) + block


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("gzip", lambda d: gzip.compress(d, mtime=0)),
        ("xz", lambda d: lzma.compress(d, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)),
        ("lzma", kernel_lzma),
        ("bzip2", bz2.compress),
        ("lz4", lz4_legacy),
    ],
)
def test_extracts_the_elf_from_the_payload_the_setup_header_names(name: str, compress: object) -> None:
    assert callable(compress)
    found, vmlinux = extract_vmlinux(bzimage(compress(ELF)))
    assert (found, vmlinux) == (name, ELF)


def test_finds_a_gzip_payload_by_scanning_when_there_is_no_setup_header() -> None:
    # An early gzip magic that is not a real stream must not stop the scan.
    blob = bzimage(gzip.compress(ELF, mtime=0), header=False, junk=b"\x1f\x8b\x08garbage" + os.urandom(64))
    assert extract_vmlinux(blob) == ("gzip", ELF)


def test_an_uncompressed_vmlinux_is_returned_as_is() -> None:
    assert extract_vmlinux(ELF) == ("none", ELF)


def test_a_payload_that_is_not_an_elf_image_is_refused() -> None:
    with pytest.raises(ImageError) as caught:
        extract_vmlinux(bzimage(gzip.compress(b"not a kernel" * 100, mtime=0)))
    assert caught.value.code == "vmlinux_not_found"


def test_lz4_matches_copy_earlier_output_including_overlapping_runs() -> None:
    # literals "abc", then a match at offset 3 of length 9 (overlapping), then literals "!"
    block = bytes([(3 << 4) | (9 - 4)]) + b"abc" + struct.pack("<H", 3) + bytes([1 << 4]) + b"!"
    out = bytearray()
    lz4_block(block, out)
    assert bytes(out) == b"abc" + b"abcabcabc" + b"!"


def test_lz4_long_literal_and_match_lengths_use_extension_bytes() -> None:
    data = bytes(range(200)) * 2  # 400 literals: 15 + 255 + 130
    out = bytearray()
    lz4_block(lz4_literals(data), out)
    assert bytes(out) == data
    # one literal then a 300-byte run of it (offset 1): 4 + 15 + 255 + 26
    block = bytes([(1 << 4) | 15]) + b"x" + struct.pack("<H", 1) + bytes([255, 26]) + bytes([0x10]) + b"."
    out = bytearray()
    lz4_block(block, out)
    assert bytes(out) == b"x" * 301 + b"."


def test_a_corrupt_lz4_block_is_an_error_not_a_crash() -> None:
    with pytest.raises(ValueError):
        lz4_block(bytes([0x15]) + b"a" + struct.pack("<H", 9), bytearray())  # match before the start
    with pytest.raises(ValueError):
        lz4_block(bytes([0xF0]), bytearray())  # truncated length


@pytest.mark.skipif(shutil.which("lz4") is None, reason="the host has no lz4 program")
def test_lz4_decoder_agrees_with_the_lz4_program_on_its_legacy_frames() -> None:
    data = ELF + os.urandom(5000) + ELF[::-1] * 3
    frame = subprocess.run(["lz4", "-l", "-c", "-9"], input=data, capture_output=True, check=True).stdout
    assert extract_vmlinux(bzimage(frame)) == ("lz4", data)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the host has no zstd program")
def test_a_zstd_payload_is_decompressed_with_the_zstd_program() -> None:
    frame = subprocess.run(["zstd", "-c", "-q"], input=ELF, capture_output=True, check=True).stdout
    assert extract_vmlinux(bzimage(frame)) == ("zstd", ELF)
