"""The snapshots' content store: contents kept once, a pack per batch, copies out, collection."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from roost.agent.snapshots import trees
from roost.agent.snapshots.content import ContentStore


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_files(store: ContentStore, *paths: Path) -> list[str]:
    """Store the files at `paths` in one pack, as one snapshot would; their digests."""
    digests = []
    with store.writing() as writer:
        for path in paths:
            with open(path, "rb") as fh:
                digests.append(writer.add(fh.fileno())[0])
    return digests


def files_under(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(str(tmp_path / "blobs"))


def test_the_store_keeps_each_content_once_under_its_digest(store: ContentStore, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"same bytes")
    (tmp_path / "b").write_bytes(b"same bytes")
    (tmp_path / "c").write_bytes(b"other bytes")

    digests = add_files(store, tmp_path / "a", tmp_path / "b", tmp_path / "c")
    again = add_files(store, tmp_path / "b")

    assert digests == [_sha(b"same bytes"), _sha(b"same bytes"), _sha(b"other bytes")]
    assert again == [_sha(b"same bytes")]
    assert store.content_bytes() == len(b"same bytes") + len(b"other bytes")
    assert store.has(digests[0]) and not store.has(_sha(b"never stored"))
    assert store.read(digests[2]) == b"other bytes"


def test_a_batch_of_many_contents_is_one_pack_file_and_no_temporary_files(store: ContentStore, tmp_path: Path) -> None:
    sources = []
    for index in range(300):
        sources.append(tmp_path / f"f{index}")
        sources[-1].write_bytes(f"content {index}\n".encode() * (index + 1))
    (tmp_path / "big").write_bytes(b"x" * 3_000_000)  # more than one read chunk

    digests = add_files(store, *sources, tmp_path / "big")

    stored = files_under(tmp_path / "blobs")
    assert len(stored) == 1 and stored[0].startswith("packs/") and stored[0].endswith(".pack")
    assert all(store.read(d) == p.read_bytes() for d, p in zip(digests, [*sources, tmp_path / "big"], strict=True))


def test_a_batch_with_nothing_new_writes_no_file(store: ContentStore, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"kept")
    add_files(store, tmp_path / "a")
    before = files_under(tmp_path / "blobs")

    add_files(store, tmp_path / "a")
    with store.writing():
        pass

    assert files_under(tmp_path / "blobs") == before


def test_a_batch_that_fails_leaves_nothing_behind(store: ContentStore, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"half a snapshot")
    with pytest.raises(RuntimeError), store.writing() as writer:
        with open(tmp_path / "a", "rb") as fh:
            writer.add(fh.fileno())
        raise RuntimeError("the scan failed")

    assert files_under(tmp_path / "blobs") == []
    assert not store.has(_sha(b"half a snapshot"))


def test_a_new_store_on_the_same_directory_finds_every_content(store: ContentStore, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"first pack")
    (tmp_path / "b").write_bytes(b"second pack")
    first, second = add_files(store, tmp_path / "a")[0], add_files(store, tmp_path / "b")[0]

    reopened = ContentStore(str(tmp_path / "blobs"))

    assert (reopened.read(first), reopened.read(second)) == (b"first pack", b"second pack")


def test_a_pack_cut_short_by_a_crash_holds_nothing_and_is_collected(store: ContentStore, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"content")
    add_files(store, tmp_path / "a")
    [pack] = (tmp_path / "blobs" / "packs").iterdir()
    pack.write_bytes(pack.read_bytes()[:-5])  # the trailer is torn
    (tmp_path / "blobs" / "packs" / ".tmp-0123456789abcdef").write_bytes(b"half written")

    reopened = ContentStore(str(tmp_path / "blobs"))
    assert not reopened.has(_sha(b"content"))
    reopened.collect(set())

    assert files_under(tmp_path / "blobs") == []


def test_copies_out_of_the_store_never_share_its_bytes(store: ContentStore, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"stored once\n")
    [digest] = add_files(store, tmp_path / "a")
    fd = os.open(tmp_path / "copy", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with store.reading() as reader:
            reader.copy_to(digest, fd)
    finally:
        os.close(fd)

    with open(tmp_path / "copy", "r+b") as fh:  # written through in place, as a program would
        fh.write(b"CHANGED")

    assert store.read(digest) == b"stored once\n"
    assert (tmp_path / "copy").read_bytes() == b"CHANGEDonce\n"


def test_collect_drops_dead_packs_and_rewrites_mostly_dead_ones(store: ContentStore, tmp_path: Path) -> None:
    for name, size in (("keep", 100), ("small-live", 10), ("big-dead", 1000), ("all-dead", 50)):
        (tmp_path / name).write_bytes(name.encode() * size)
    keep = add_files(store, tmp_path / "keep")[0]
    small_live, big_dead = add_files(store, tmp_path / "small-live", tmp_path / "big-dead")
    add_files(store, tmp_path / "all-dead")

    store.collect({keep, small_live})

    assert len(files_under(tmp_path / "blobs")) == 2  # `keep`'s pack, and the rewrite of the mostly dead one
    assert store.content_bytes() == len(b"keep") * 100 + len(b"small-live") * 10
    assert store.read(small_live) == b"small-live" * 10
    assert not store.has(big_dead)
    assert ContentStore(str(tmp_path / "blobs")).read(small_live) == b"small-live" * 10


def test_loose_contents_of_an_older_agent_are_read_and_collected(store: ContentStore, tmp_path: Path) -> None:
    old, dead = _sha(b"old layout"), _sha(b"old and unused")
    for digest, data in ((old, b"old layout"), (dead, b"old and unused")):
        (tmp_path / "blobs" / digest[:2]).mkdir(parents=True, exist_ok=True)
        (tmp_path / "blobs" / digest[:2] / digest[2:]).write_bytes(data)

    assert store.read(old) == b"old layout" and store.has(dead)
    store.collect({old})

    assert store.has(old) and not store.has(dead)


def test_a_scan_with_a_keeper_stores_each_new_content_once_and_rereads_nothing_stored(
    store: ContentStore, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    for index in range(50):
        (root / "d" / f"f{index}").write_bytes(b"same\n" if index % 2 else f"file {index}\n".encode())
    top = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        with store.writing() as writer:
            first = trees.scan(top, keeper=writer)
        new_bytes = writer.new_bytes
        with store.writing() as writer:
            again = trees.scan(top, first, previous_at_ns=2**62, keeper=writer)
    finally:
        os.close(top)

    assert new_bytes == len(b"same\n") + sum(len(f"file {i}\n") for i in range(0, 50, 2))
    assert writer.new_bytes == 0 and again == first
    assert all(store.read(str(e.digest)) == (root / e.path).read_bytes() for e in first.values() if e.kind == "file")
