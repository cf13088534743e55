"""Local image builds: failures carry a hint that fits their cause, and a normal user's build is unpacked by roost.

The bootstrap tool is a stand-in script named `mmdebstrap` on a PATH of the
test's own, so nothing is downloaded and nothing outside `tmp_path` changes.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from roost import userns
from roost.errors import ImageError
from roost.images.build import MIRROR_ENV, check_unprivileged_build, let_pip_install, run_bootstrap
from roost.images.catalog import env_spec

MIRROR = "http://mirror.invalid/debian"


def _fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """Put an executable `mmdebstrap` running `body` (Python; `argv` is its arguments) first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "mmdebstrap"
    tool.write_text(f"#!{sys.executable}\nimport sys\nargv = sys.argv[1:]\n" + textwrap.dedent(body))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin")
    monkeypatch.setenv(MIRROR_ENV, MIRROR)
    return tool


def _failing_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> ImageError:
    _fake_tool(tmp_path, monkeypatch, f"print({chr(10).join(lines)!r}, flush=True)\nsys.exit(25)\n")
    with pytest.raises(ImageError) as caught:
        run_bootstrap(env_spec("debian:12"), tmp_path / "rootfs")
    return caught.value


def test_a_build_that_cannot_reach_the_mirror_names_the_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    error = _failing_with(
        tmp_path, monkeypatch, ["I: running apt-get update...", f"E: Failed to fetch {MIRROR}/dists/bookworm/InRelease"]
    )

    assert error.code == "build_failed"
    assert error.hint is not None and MIRROR in error.hint and MIRROR_ENV in error.hint


def test_a_build_that_cannot_set_up_its_namespace_does_not_blame_the_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = _failing_with(
        tmp_path, monkeypatch, ["E: unable to pick chroot mode automatically (use --mode for more info)"]
    )

    assert error.code == "build_failed"
    assert error.hint is not None and "mirror" not in error.hint and "roost.doctor()" in error.hint


def test_an_unrecognised_failure_points_at_the_tools_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    error = _failing_with(tmp_path, monkeypatch, ["E: something else entirely"])

    assert error.hint is not None and "mirror" not in error.hint and "--json" in error.hint
    assert error.details["log_tail"][-1] == "E: something else entirely"


def _tarball(path: Path) -> None:
    """What mmdebstrap's tar output holds that matters here: owners, a setuid file, a device node."""
    with tarfile.open(path, "w") as tar:

        def add(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, data: bytes = b"") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.size = kind, mode, uid, gid, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("./usr", tarfile.DIRTYPE, 0o755)
        add("./usr/bin", tarfile.DIRTYPE, 0o755)
        add("./usr/bin/su", tarfile.REGTYPE, 0o4755, data=b"su")
        add("./etc", tarfile.DIRTYPE, 0o755)
        add("./etc/shadow", tarfile.REGTYPE, 0o640, gid=42, data=b"root:*:1::::::\n")
        add("./dev", tarfile.DIRTYPE, 0o755)
        add("./dev/null", tarfile.CHRTYPE, 0o666)


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the tool writes the rootfs directory itself")
def test_a_normal_users_build_runs_in_unshare_mode_and_unpacks_a_tree_the_user_owns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tool(
        tmp_path,
        monkeypatch,
        f"""
        import json, shutil
        open({str(tmp_path / "argv.json")!r}, "w").write(json.dumps(argv))
        shutil.copy({str(tmp_path / "made.tar")!r}, argv[-2])
        """,
    )
    _tarball(tmp_path / "made.tar")
    dest = tmp_path / "stage" / "rootfs"
    dest.parent.mkdir()

    assert run_bootstrap(env_spec("debian:12"), dest) == "mmdebstrap"

    argv = json.loads((tmp_path / "argv.json").read_text())
    assert "--mode=unshare" in argv and "--format=tar" in argv
    assert argv[-2] == str(dest) + ".tar" and argv[-1] == MIRROR
    shadow = (dest / "etc" / "shadow").lstat()
    assert (shadow.st_uid, shadow.st_gid) == (os.geteuid(), os.getegid())
    assert stat.S_IMODE(shadow.st_mode) == 0o640
    assert stat.S_IMODE((dest / "usr" / "bin" / "su").lstat().st_mode) == 0o4755
    assert not os.path.lexists(dest / "dev" / "null")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["rootfs"]  # the tarball is gone


def test_an_unprivileged_build_is_refused_up_front_with_every_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").write_text("")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "max_user_namespaces").write_text("0\n")
    monkeypatch.setattr(userns, "SUBUID", tmp_path / "empty")
    monkeypatch.setattr(userns, "SUBGID", tmp_path / "empty")
    monkeypatch.setattr(userns, "PROC_SYS", tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(ImageError) as caught:
        check_unprivileged_build()

    error = caught.value
    assert error.code == "userns_unavailable"
    for part in ("user.max_user_namespaces is 0", "newuidmap and newgidmap not installed", "has no range"):
        assert part in error.message
    for fix in ("sysctl -w user.max_user_namespaces", "apt-get install uidmap", "usermod --add-subuids"):
        assert error.hint is not None and fix in error.hint


def test_a_finished_tree_lets_pip_install_but_never_follows_a_link_it_holds(tmp_path: Path) -> None:
    own = tmp_path / "own" / "usr" / "lib" / "python3.11"
    own.mkdir(parents=True)
    (own / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    outside = tmp_path / "outside" / "python3.11"
    outside.mkdir(parents=True)
    (outside / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    linked = tmp_path / "linked" / "usr"
    linked.mkdir(parents=True)
    (linked / "lib").symlink_to(tmp_path / "outside")  # an image whose /usr/lib leads out of it

    let_pip_install(tmp_path / "own")
    let_pip_install(tmp_path / "linked")

    assert not (own / "EXTERNALLY-MANAGED").exists()
    assert (outside / "EXTERNALLY-MANAGED").exists()
