"""Issue 11: everything under ROOST_HOME is the owner's alone (files 0600, directories 0700).

`history.jsonl` used to be 0644 with full command lines in it, and service
logs and records 0644 in a 0755 directory. The rule for roost's own state
is strict; workspace *content* (the `/workspace` tree, a sandbox's overlay)
keeps the modes the workspace gave it, since programs inside depend on
them, and sits in a 0700 workspace directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from roost import Roost, Workspace
from roost.images.cache import ImageCache
from roost.workspace.readiness import Readiness

# Trees whose modes belong to the workspace, by their name in a workspace directory
# (/workspace; a sandbox's overlay layers).
CONTENT = {"workspace", "layers"}


def loose_entries(home: Path) -> list[str]:
    """Paths under `home` that group or others can use, content trees aside; never follows links."""
    found = []
    for dirpath, dirnames, filenames in os.walk(home):
        rel = Path(dirpath).relative_to(home).parts
        if len(rel) == 2 and rel[0] == "workspaces":
            dirnames[:] = [d for d in dirnames if d not in CONTENT]
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                found.append(f"{oct(stat.S_IMODE(mode))} {os.path.relpath(path, home)}")
    return found


def test_a_full_cycle_leaves_nothing_under_the_home_that_others_can_read(
    roost: Roost, workspace: Workspace, tmp_path: Path
) -> None:
    assert workspace.exec("echo secret-token=hunter2 > notes.txt && mkdir -p src && echo x > src/a").exit_code == 0
    workspace.services.start("ticker", "echo started; sleep 30", ready=Readiness(command="true"))
    shell = workspace.shells.open()
    workspace.shells.write(shell.id, "echo hi")
    workspace.snapshots.create("checkpoint")
    workspace.export("notes.txt", tmp_path / "exported.txt")
    workspace.exec("true")  # history with outputs

    assert stat.S_IMODE(roost.home.stat().st_mode) == 0o700
    assert loose_entries(roost.home) == []
    ws_dir = roost.home / "workspaces" / workspace.id
    assert stat.S_IMODE(ws_dir.stat().st_mode) == 0o700, "content trees sit in a private directory"
    assert stat.S_IMODE((ws_dir / "history.jsonl").stat().st_mode) == 0o600
    assert "hunter2" in (ws_dir / "history.jsonl").read_text(), "the file checked is the one with command lines"


def test_an_existing_home_left_loose_is_tightened_when_opened(roost: Roost, workspace: Workspace) -> None:
    workspace.exec("true")
    history = roost.home / "workspaces" / workspace.id / "history.jsonl"
    for path, mode in ((roost.home, 0o755), (roost.home / "workspaces", 0o755), (history, 0o644)):
        path.chmod(mode)

    reopened = Roost(home=roost.home, backend=roost.workspace(workspace.id).info().backend)
    try:
        assert stat.S_IMODE(roost.home.stat().st_mode) == 0o700
        assert stat.S_IMODE((roost.home / "workspaces").stat().st_mode) == 0o700
        reopened.workspace(workspace.id).exec("true")
        assert stat.S_IMODE(history.stat().st_mode) == 0o600
    finally:
        reopened.close()


def test_a_new_home_is_created_private_even_when_its_parents_are_missing(tmp_path: Path) -> None:
    home = tmp_path / "a" / "b" / "roost"
    with Roost(home=home, backend="mock"):
        pass
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_the_image_cache_top_directory_is_private_while_rootfs_trees_keep_their_modes(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o755)
    cache_dir.chmod(0o755)
    cache = ImageCache(cache_dir)
    cache.ensure()
    rootfs = cache.rootfs("some-key")
    rootfs.mkdir(mode=0o755)
    rootfs.chmod(0o755)
    cache.ensure()

    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(rootfs.stat().st_mode) == 0o755, "a sandbox's / must stay traversable inside it"
