"""A sandbox workspace made before sandboxes had their own user namespace (overlay layers
directly in the workspace directory, files owned by host root, no id map in its record)
starts again with everything it had, now owned by the namespace's ids."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from roost import Roost

pytestmark = pytest.mark.integration


def _make_legacy(ws_dir: Path) -> None:
    """Rewrite a stopped workspace's directory into the old layout, as host root made it."""
    for name in ("upper", "work"):
        os.rename(ws_dir / "layers" / name, ws_dir / name)
    (ws_dir / "layers").rmdir()
    for name in ("upper", "workspace", "agent"):
        for dirpath, dirnames, filenames in os.walk(ws_dir / name):
            for entry in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(entry, 0, 0)
    (ws_dir / "run").mkdir()
    record_path = ws_dir / "workspace.json"
    record = json.loads(record_path.read_text())
    # As that roost wrote it: schema 1, its backend's facts in `runtime`, no id map among them.
    runtime = {key: value for key, value in record.pop("boot").items() if key != "id_map"}
    runtime["image"] = record.pop("image")
    del record["ports"], record["network"]
    record["network_policy"] = record["network_policy"]["mode"]
    record_path.write_text(json.dumps({**record, "schema_version": 1, "runtime": runtime}))


def test_a_workspace_made_before_user_namespaces_starts_with_its_files(sandbox: Roost) -> None:
    if os.geteuid() != 0:
        pytest.skip("old sandbox workspaces were owned by host root")
    ws = sandbox.create_workspace("debian:12", ephemeral=False)
    ws.exec(["sh", "-c", "echo kept > /workspace/notes; echo etc > /etc/roost-legacy-test"])
    ws.stop()
    ws_dir = sandbox.home / "workspaces" / ws.id
    _make_legacy(ws_dir)
    ws.start()
    result = ws.exec(
        [
            "sh",
            "-c",
            "cat /workspace/notes /etc/roost-legacy-test; stat -c %u /workspace/notes; echo more >> /workspace/notes",
        ]
    )
    assert result.stdout.split() == ["kept", "etc", "0"]
    assert result.exit_code == 0
    assert not (ws_dir / "run").exists() and not (ws_dir / "upper").exists()
    assert (ws_dir / "workspace" / "notes").stat().st_uid != 0
