"""Nothing a workspace does to its own files can make roost talk to another workspace: the
agent's socket lives in roost's own directory (never mounted inside), and every connection
checks the agent's proof of identity. At worst a workspace whose agent cannot prove itself
is marked unhealthy with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roost import Roost, RoostError

pytestmark = pytest.mark.integration

SWAP = """
set -u
target="$1"
for place in /run/roost /run /var/lib/roost-agent /tmp; do
  mkdir -p "$place" 2>/dev/null || true
  rm -rf "$place/agent.sock" 2>/dev/null || true
  ln -s "$target" "$place/agent.sock" 2>/dev/null || true
done
ls -la /run/roost
"""


def test_swapping_paths_inside_a_workspace_cannot_redirect_the_host(sandbox: Roost) -> None:
    ws_a = sandbox.create_workspace("debian:12", name="victim", ephemeral=False)
    ws_b = sandbox.create_workspace("debian:12", name="attacker", ephemeral=False)
    ws_a.files.write("/workspace/who", b"A")
    ws_b.files.write("/workspace/who", b"B")
    a_socket = str(sandbox.home / "workspaces" / ws_a.id / "agent.sock")
    assert ws_b.exec(["sh", "-c", SWAP, "swap", a_socket]).exit_code == 0
    # A fresh client, as the next CLI call would be: nothing cached from before the swap.
    later = Roost(home=sandbox.home, backend="sandbox")
    try:
        assert later.workspace("attacker").exec(["cat", "/workspace/who"]).stdout == "B"
        assert later.workspace("attacker").files.read("/workspace/who").data == b"B"
        assert later.workspace("attacker").info().state == "running"
    finally:
        later.close()


def test_an_agent_answering_for_another_workspace_marks_the_workspace_unhealthy(roost: Roost) -> None:
    ws = roost.create_workspace("debian:12", ephemeral=False)
    other = roost.create_workspace("debian:12", ephemeral=False)
    ws_dir = roost.home / "workspaces"
    # Give `ws` the other workspace's key, as if the wrong agent sat behind its socket.
    (ws_dir / ws.id / "agent.key").write_bytes((ws_dir / other.id / "agent.key").read_bytes())
    later = Roost(home=roost.home, backend=ws.info().backend)
    try:
        with pytest.raises(RoostError) as caught:
            later.workspace(ws.id).exec(["true"])
        assert caught.value.code == "agent_identity_mismatch"
        info = later.workspace(ws.id).info()
        assert info.state == "unhealthy"
        assert "is not workspace" in (info.health or "")
        assert later.workspace(other.id).exec(["true"]).exit_code == 0
    finally:
        later.close()


def test_the_agent_socket_is_not_inside_the_workspace(sandbox: Roost) -> None:
    ws = sandbox.create_workspace("debian:12")
    found = ws.exec(["sh", "-c", "find / -xdev \\( -name agent.sock -o -name agent.key \\) 2>/dev/null"])
    assert found.stdout == ""
    assert Path(sandbox.home / "workspaces" / ws.id / "agent.sock").is_socket()
