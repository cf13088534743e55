"""Python files in /workspace never run inside the agent: the agent's working directory is
/workspace, and a `secrets.py` or `pwd.py` there must not shadow a module it imports (at start,
or later when an operation first needs one)."""

from __future__ import annotations

from pathlib import Path

from roost import Roost

SHADOWS = ("secrets", "pwd", "grp", "json", "tarfile", "shutil", "tempfile")


def test_modules_in_the_workspace_never_shadow_the_agents(roost: Roost, tmp_path: Path) -> None:
    ws = roost.create_workspace("debian:12", ephemeral=False)
    for name in SHADOWS:
        ws.files.write(f"/workspace/{name}.py", f"raise SystemExit('workspace code ran in the agent: {name}')\n")
    ws.restart()  # a fresh agent, started in /workspace
    assert ws.exec(["true"]).exit_code == 0
    # Operations that import more of the standard library on first use.
    ws.export("/workspace", tmp_path / "out", format="tar")
    ws.snapshots.create("after")
    assert {f.name for f in ws.files.list("/workspace").entries} >= {f"{name}.py" for name in SHADOWS}
