"""A sandbox's part of its workspace directory: which directories it owns, their
owners and modes, adopting the layout of older roosts, and removing what the
workspace wrote.

    <ws_dir>/layers/upper, layers/work   the overlay's writable layers (one mount, as overlayfs wants)
    <ws_dir>/workspace                   /workspace
    <ws_dir>/agent                       the agent's state (/var/lib/roost-agent)

All of them belong to the workspace's root (an unprivileged host id when roost
runs as root). A normal user cannot unlink what the workspace gave to its
subordinate ids; removal then runs inside a namespace with the same map.

Imports: backends.sandbox.idmap, errors, ownership and the standard library.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from roost.backends.sandbox.idmap import IdMap
from roost.errors import BackendError, Remedy
from roost.ownership import OwnerOutOfRange, shift_tree

_OWNED = ("layers", "layers/upper", "layers/work", "workspace", "agent")
# Deleting a big tree (a workspace full of node_modules) can take a while, but not forever.
REMOVE_DEADLINE = 600.0
CLEANUP = Remedy(
    "once newuidmap and the subordinate ids are in order (doctor checks them), remove it",
    "workspace_delete",
    flags=("force",),
)


def adopt_legacy(ws_dir: Path, id_map: IdMap) -> None:
    """A workspace made before sandboxes had their own user namespace: move its overlay
    layers under layers/ and give what it wrote to the namespace's ids, so a start keeps it.

    Raises:
        BackendError: workspace_unadoptable when its files cannot be moved over.
    """
    try:
        (ws_dir / "layers").mkdir(mode=0o700, exist_ok=True)
        for name in ("upper", "work"):
            if (ws_dir / name).is_dir() and not (ws_dir / "layers" / name).exists():
                os.rename(ws_dir / name, ws_dir / "layers" / name)
        if os.geteuid() == 0 and id_map.root_uid != 0:
            for name in ("layers/upper", "workspace", "agent"):
                if (ws_dir / name).is_dir():
                    shift_tree(ws_dir / name, id_map.root_uid, id_map.root_gid)
        for name in ("lower", "merged", "run"):  # the old mount points and socket dir
            shutil.rmtree(ws_dir / name, ignore_errors=True)
    except (OSError, OwnerOutOfRange) as exc:
        raise BackendError(
            f"cannot move this workspace's files to the sandbox's user namespace: {exc}",
            code="workspace_unadoptable",
            hint="it was made by an older roost; recreate it (its /workspace is on the host under the workspace's directory)",
        ) from None


def prepare(ws_dir: Path, id_map: IdMap) -> None:
    """The workspace's own directories, owned by its root (an unprivileged host id)."""
    for name in _OWNED:
        (ws_dir / name).mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        for name in _OWNED:
            os.chown(ws_dir / name, id_map.root_uid, id_map.root_gid)
    # The upper dir's root is the sandbox's `/`: the env's other users must be able to traverse it.
    for name in ("layers/upper", "workspace"):
        os.chmod(ws_dir / name, 0o755)


def remove_own_files(ws_dir: Path) -> list[Path]:
    """Remove what the sandbox wrote as roost's user, where that suffices; return the trees it could not.

    The common case, files owned by the workspace's root (the user), needs no namespace.
    """
    work = ws_dir / "layers" / "work" / "work"
    if work.is_dir() and not work.is_symlink():
        os.chmod(work, 0o700)  # overlayfs leaves its own work dir mode 000; it is ours
    left = []
    for name in (n for n in _OWNED if "/" not in n):
        path = ws_dir / name
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            continue
        except OSError:
            left.append(path)
    return left


def remove_as_workspace_root(targets: list[Path], id_map: IdMap, launcher: Path) -> None:
    """Delete `targets` from a namespace with the workspace's id map (see launcher.py).

    A normal user cannot unlink what the workspace left owned by subordinate
    ids (or locked) from outside; the namespace's root can.

    Raises:
        BackendError: cleanup_failed.
    """
    config = json.dumps({"id_map": id_map.launch_config(), "remove": [str(t) for t in targets]})
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", str(launcher), config],
            capture_output=True,
            timeout=REMOVE_DEADLINE,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(
            f"cannot remove the workspace's files: {exc}", code="cleanup_failed", remedy=CLEANUP
        ) from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        raise BackendError(f"cannot remove the workspace's files: {detail}", code="cleanup_failed", remedy=CLEANUP)
