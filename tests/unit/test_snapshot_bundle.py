"""snapshot.send and snapshot.receive between two in-process agents: a bundle carries a snapshot
exactly, and a receiver refuses a bundle it cannot trust before /workspace is touched."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.server.connection import Connection, agent_info
from roost.agent.snapshots.bundle import LENGTH, MAGIC
from roost.agent.snapshots.content import MAGIC as PACK_MAGIC
from roost.agent.snapshots.content import TRAILER
from roost.agent.state import AgentState
from roost.errors import RoostError
from roost.rpc import AgentClient

IO_TIMEOUT = 10.0


@dataclass
class Agent:
    root: Path
    state: Path
    client: AgentClient

    def call(self, op: str, args: dict[str, object], upload: list[bytes] | None = None) -> dict[str, object]:
        return dict(self.client.call(op, args, upload=upload).result)

    def bundle(self, name: str) -> list[bytes]:
        pieces: list[bytes] = []
        self.client.call("snapshot.send", {"name": name}, on_data=lambda _channel, data: pieces.append(data))
        return pieces

    def tree(self) -> dict[str, tuple[str, int, bytes]]:
        """Every path under the root: its kind, mode and content (or link target)."""
        found = {}
        for directory, dirs, files in os.walk(self.root):
            for name in [*dirs, *files]:
                path = Path(directory, name)
                rel = str(path.relative_to(self.root))
                st = path.lstat()
                if path.is_symlink():
                    found[rel] = ("link", 0, os.readlink(path).encode())
                elif path.is_dir():
                    found[rel] = ("dir", st.st_mode & 0o7777, b"")
                else:
                    found[rel] = ("file", st.st_mode & 0o7777, path.read_bytes())
        return found


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[tuple[Agent, Agent]]:
    started = []
    for name in ("parent", "child"):
        root = tmp_path / name / "ws"
        root.mkdir(parents=True)
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        state = AgentState(WorkspacePaths(str(root)), str(tmp_path / name / "state"), None, base_env)
        server_sock, client_sock = socket.socketpair()
        client_sock.settimeout(IO_TIMEOUT)
        connection = Connection(server_sock, OpTable(state), agent_info())
        threading.Thread(target=connection.serve, daemon=True).start()
        started.append(Agent(root, tmp_path / name / "state", AgentClient(client_sock, client_name="tests")))
    parent, child = started
    child.call("snapshot.create", {"name": "baseline"})
    yield parent, child
    for agent in started:
        agent.client.close()


def _seed(root: Path) -> None:
    (root / "src").mkdir()
    (root / "src" / "a.txt").write_text("one\n")
    os.link(root / "src" / "a.txt", root / "hard")
    os.symlink("src/a.txt", root / "link")
    with open(root / "sparse", "wb") as sparse:
        sparse.truncate(1 << 20)
        sparse.write(b"head")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "src").chmod(0o750)


def test_a_bundle_carries_the_snapshot_exactly_and_becomes_the_receivers_baseline(agents: tuple[Agent, Agent]) -> None:
    parent, child = agents
    _seed(parent.root)
    parent.call("snapshot.create", {"name": "s1"})
    (parent.root / "after.txt").write_text("not in s1")  # sent from the store, not the live tree
    (child.root / "stray").write_text("goes")

    received = child.call("snapshot.receive", {}, upload=parent.bundle("s1"))

    assert (received["name"], received["files"]) == ("baseline", 4)
    expected = parent.tree()
    del expected["after.txt"]
    assert child.tree() == expected
    assert child.call("workspace.diff", {})["counts"] == {}
    (child.root / "src" / "a.txt").write_text("two\n")
    assert (parent.root / "src" / "a.txt").read_text() == "one\n"
    assert (child.root / "hard").read_text() == "one\n"  # the link became a file of its own


def _bundle(entries: list[list[object]], contents: list[bytes], header_extra: dict[str, object] | None = None) -> bytes:
    listed = [[hashlib.sha256(c).hexdigest(), len(c)] for c in contents]
    header = json.dumps({"entries": entries, "contents": listed, **(header_extra or {})}).encode()
    return MAGIC + LENGTH.pack(len(header)) + header + b"".join(contents)


def _file(path: str, content: bytes, mode: int = 0o644) -> list[object]:
    return [path, "file", mode, len(content), hashlib.sha256(content).hexdigest(), None, 0, 0, 0, False]


GOOD = _file("ok.txt", b"fine\n")
BAD_BUNDLES = {
    "a path out of the workspace": _bundle([_file("../escape", b"x")], [b"x"]),
    "an absolute path": _bundle([_file("/etc/escape", b"x")], [b"x"]),
    "a dot-dot inside": _bundle([["d", "dir", 0o755, 0, None, None, 0, 0, 0, None], _file("d/../../x", b"x")], [b"x"]),
    "a missing parent directory": _bundle([_file("nodir/x", b"x")], [b"x"]),
    "a device": _bundle([["dev", "other", 0o644, 0, None, None, 0, 0, 0, None]], []),
    "a file type in the mode": _bundle([_file("typed", b"x", mode=0o100644)], [b"x"]),
    "a content that is not what it claims": _bundle([GOOD], [b"fine\n"]).replace(b"fine\n", b"evil\n"),
    "a file whose content never came": _bundle([GOOD], []),
    "a truncated stream": _bundle([GOOD], [b"fine\n"])[:-2],
    "bytes after the last content": _bundle([GOOD], [b"fine\n"]) + b"more",
    "another format": b"notabndl" + _bundle([GOOD], [b"fine\n"])[8:],
    "a header past its limit": MAGIC + LENGTH.pack(1 << 40),
}


@pytest.mark.parametrize("why", sorted(BAD_BUNDLES))
def test_a_bundle_that_cannot_be_trusted_changes_nothing(agents: tuple[Agent, Agent], why: str) -> None:
    _, child = agents
    (child.root / "mine.txt").write_text("kept\n")
    before = child.tree()
    outside = sorted(p.name for p in child.root.parent.iterdir())

    with pytest.raises(RoostError) as refused:
        child.call("snapshot.receive", {}, upload=[BAD_BUNDLES[why]])

    assert refused.value.code == "invalid_argument", why
    assert "snapshot bundle" in refused.value.message
    assert child.tree() == before
    assert sorted(p.name for p in child.root.parent.iterdir()) == outside
    assert child.call("workspace.diff", {})["counts"] == {"added": 1}  # the old baseline still stands


def _plant_pack(state: Path, name: str, claims: bytes, holds: bytes) -> None:
    """A pack in the store whose index says it holds `claims` where it holds `holds` (same length)."""
    index = json.dumps([[hashlib.sha256(claims).hexdigest(), 0, len(holds)]]).encode()
    packs = state / "blobs" / "packs"
    packs.mkdir(parents=True, exist_ok=True)
    (packs / f"{name}.pack").write_bytes(holds + index + TRAILER.pack(len(holds), PACK_MAGIC))


def test_a_linked_pack_is_trusted_only_once_its_contents_hash_to_its_index(agents: tuple[Agent, Agent]) -> None:
    _, child = agents
    manifest_only = _bundle([GOOD], [])  # its content is to be found in the store, as a fork's shared pack
    _plant_pack(child.state, "0123456789abcdef", claims=b"fine\n", holds=b"evil\n")
    (child.root / "mine.txt").write_text("kept\n")
    before = child.tree()

    with pytest.raises(RoostError) as refused:
        child.call("snapshot.receive", {}, upload=[manifest_only])

    assert refused.value.code == "invalid_argument"
    assert "does not hold what its index says" in refused.value.message
    assert child.tree() == before
    _plant_pack(child.state, "0123456789abcdef", claims=b"fine\n", holds=b"fine\n")
    child.call("snapshot.receive", {}, upload=[manifest_only])
    assert (child.root / "ok.txt").read_text() == "fine\n"
