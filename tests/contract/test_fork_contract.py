"""Workspace fork on every backend, through the SDK: children agree in content, differ in identity,
diverge independently, outlive their parent and its snapshot, share the parent's stored contents
where the backend allows (the one test that looks at the host's files), and bad input makes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roost import Roost, RoostError, Workspace
from roost.backends import get_backend

# Every file kind a child must own a copy of: regular, hard-linked (two names), symlink, sparse.
TREE = (
    "mkdir -p src && echo one > src/a.txt && ln src/a.txt hard && ln -s src/a.txt link && "
    "truncate -s 4M sparse && printf tail >> sparse && chmod 0750 src"
)
SHOW = "cat src/a.txt hard; readlink link; stat -c '%s %a' sparse src; tail -c 4 sparse; echo"


def _show(ws: Workspace) -> str:
    result = ws.exec(SHOW)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _ids(roost: Roost) -> set[str]:
    return {info.id for info in roost.list_workspaces()}


def test_children_hold_the_parents_tree_as_their_baseline_and_diverge_independently(workspace: Workspace) -> None:
    assert workspace.exec(TREE).exit_code == 0
    before = _show(workspace)

    forked = workspace.fork(3, name_prefix="kid", labels={"try": "yes"})

    assert len(forked) == 3 and [child.info().name for child in forked] == ["kid-1", "kid-2", "kid-3"]
    for child in forked:
        info = child.info()
        assert (info.parent, info.forked_from, info.labels) == (workspace.id, None, {"try": "yes"})
        assert _show(child) == before
        assert child.diff().changes == ()  # the fork's state is the child's baseline
    first, second, third = forked
    # Write through every kind in one child: nothing shows in the parent or the siblings.
    writes = "echo two > src/a.txt && echo other > hard && ln -sfn hard link && printf xx | dd of=sparse conv=notrunc"
    assert first.exec(writes).exit_code == 0
    assert _show(first) != before
    assert _show(workspace) == before and _show(second) == before
    assert {c.path for c in first.diff().changes} == {"src/a.txt", "hard", "link", "sparse"}
    assert third.exec("rm -rf src").exit_code == 0
    assert _show(second) == before


def test_each_child_has_an_identity_of_its_own(roost: Roost, workspace: Workspace, backend: str) -> None:
    forked = workspace.fork(2)
    ids = {workspace.id, *(child.id for child in forked)}
    assert len(ids) == 3
    if backend == "mock":
        pytest.skip("mock runs on the host: its hostname and machine-id are the host's")
    seen = {ws.exec("hostname; cat /etc/machine-id").stdout for ws in (workspace, *forked)}
    assert len(seen) == 3
    assert {line.split()[0] for line in seen} == ids  # the hostname is the workspace id


def test_deleting_the_parent_or_its_snapshot_never_breaks_a_child(roost: Roost, workspace: Workspace) -> None:
    workspace.files.write("kept.txt", "v1\n")
    workspace.snapshots.create("v1")
    workspace.files.write("kept.txt", "v2\n")

    (from_snapshot,) = workspace.fork(snapshot="v1")
    (from_now,) = workspace.fork()
    workspace.snapshots.delete("v1")
    workspace.delete()

    assert from_snapshot.files.read("kept.txt").text == "v1\n"
    assert from_now.files.read("kept.txt").text == "v2\n"
    assert from_snapshot.info().forked_from == "v1"
    from_now.files.write("kept.txt", "changed\n")
    assert from_now.reset().restored >= 1  # its baseline (the fork's state) is its own
    assert from_now.files.read("kept.txt").text == "v2\n"


def test_kept_services_start_in_each_child_while_shells_and_secrets_stay_behind(
    roost: Roost, workspace: Workspace
) -> None:
    roost.secrets.set("FORK_TOKEN", "s3cret-value-for-fork-test")
    workspace.secrets.add("FORK_TOKEN")
    workspace.services.start("keeper", ["sleep", "1000"], restart="always")
    workspace.services.start("oneoff", ["sleep", "1000"])
    workspace.shells.open()

    plain, named = workspace.fork(), workspace.fork(secrets=["FORK_TOKEN"])

    result = plain.result
    assert (result.shells_not_copied, result.secrets_not_copied) == (1, ("FORK_TOKEN",))
    (child,) = plain
    info = child.info()
    assert info.last_start is not None and info.last_start.services == ("keeper",)
    assert {s.name: s.state for s in child.services.list()} == {"keeper": "ready"}
    assert child.shells.list() == []
    assert child.secrets.list() == []
    assert [s.name for s in named[0].secrets.list()] == ["FORK_TOKEN"]
    assert named.result.secrets_not_copied == ()


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"count": 0}, "invalid_argument"),
        ({"count": 1000}, "invalid_argument"),
        ({"snapshot": "no-such-snapshot"}, "snapshot_not_found"),
        ({"snapshot": "../bad"}, "invalid_argument"),
        ({"name_prefix": "ws-looks-like-an-id"}, "invalid_argument"),
        ({"secrets": ["NO_SUCH_SECRET"]}, "secret_not_found"),
    ],
)
def test_bad_input_makes_nothing(roost: Roost, workspace: Workspace, arguments: dict[str, object], code: str) -> None:
    before = _ids(roost)
    with pytest.raises(RoostError) as raised:
        workspace.fork(**arguments)  # type: ignore[arg-type]
    assert raised.value.code == code
    assert _ids(roost) == before
    assert [s.name for s in workspace.snapshots.list()] == ["baseline"]  # no fork snapshot left behind


def test_a_taken_name_or_a_stopped_parent_makes_nothing(roost: Roost, workspace: Workspace) -> None:
    roost.create_workspace("debian:12", name="twin-2", ephemeral=False)
    before = _ids(roost)
    with pytest.raises(RoostError) as taken:
        workspace.fork(2, name_prefix="twin")
    assert taken.value.code == "name_taken"
    workspace.stop()
    with pytest.raises(RoostError) as stopped:
        workspace.fork()
    assert stopped.value.code == "workspace_stopped"
    assert _ids(roost) == before


def _packs(roost: Roost, ws: Workspace, parts: tuple[str, ...]) -> dict[str, os.stat_result]:
    store = Path(roost.home, "workspaces", ws.id, *parts)
    return {p.name: p.stat() for p in store.iterdir() if p.suffix == ".pack"}


def test_a_fork_shares_the_parents_stored_contents_instead_of_copying_them(
    roost: Roost, workspace: Workspace, backend: str
) -> None:
    script = "mkdir -p big && for i in $(seq 50); do head -c 65536 /dev/urandom > big/f$i; done"
    assert workspace.exec(script).exit_code == 0
    first, second = workspace.fork(2)
    access = get_backend(backend).content_store()
    if access is None:
        pytest.skip(f"{backend} cannot share a content store here: the contents travel in the bundle")

    # The fork's own snapshot of the parent is gone (and with it the parent's link): the children
    # hold one copy between them, each pack one inode with a link from each.
    ours, theirs = _packs(roost, first, access.parts), _packs(roost, second, access.parts)
    assert ours and set(ours) == set(theirs)
    assert all(ours[name].st_ino == theirs[name].st_ino and ours[name].st_nlink >= 2 for name in ours)
    assert sum(p.st_size for p in ours.values()) >= 50 * 65536
    workspace.delete()
    assert first.exec("cat big/f50 | wc -c").stdout.strip() == "65536"
    assert first.reset().restored == 0 and second.diff().changes == ()
