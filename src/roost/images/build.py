"""Building an environment's root filesystem locally with mmdebstrap (or debootstrap).

The Debian mirror is read at run time from apt's own configuration on this
host (`/etc/apt/sources.list.d/*.sources`, then `/etc/apt/sources.list`),
or `$ROOST_DEBIAN_MIRROR`; it is never hard-coded. Subprocess failures are
translated here, once, into `ImageError`s, with a hint that fits the cause.

As root, the tool writes the rootfs directory itself. As a normal user,
mmdebstrap runs in unshare mode (a user namespace over the user's
subordinate ids, see `roost.userns`, checked before it starts) and writes a
tarball, which roost's own layer code unpacks: every file ends up owned by
the user, who is root inside the user's sandboxes; the owners the tarball
names are not kept (outside a namespace only root could set them), device
nodes are skipped (the sandbox mounts its own /dev), and setuid/setgid bits
are kept: the image must stay a working Debian where they matter (pushed to
a registry, made into a VM disk); inside a sandbox no_new_privs makes them
inert, and on the host they grant only the user's own ids, inside the 0700
image cache.

Imports: images.catalog, images.layers, userns, errors and the standard library.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from collections import deque
from collections.abc import Callable
from pathlib import Path

from roost.errors import ImageError, operator_remedy
from roost.images.cache import FREE_IMAGE_SPACE
from roost.images.catalog import EnvSpec
from roost.images.layers import apply_layer
from roost.userns import requirements

ProgressFn = Callable[[str, int, int], None]
"""progress(step_description, steps_done, steps_total)"""

MIRROR_ENV = "ROOST_DEBIAN_MIRROR"
# Directories roost binds or writes at run time; they must exist in a read-only rootfs.
MOUNT_POINTS = ("workspace", "var/lib/roost-agent", "run/roost", "opt/roost")
# mmdebstrap's own progress lines, in the order they appear.
_STEPS = (
    ("running apt-get update", "updating package lists"),
    ("downloading packages", "downloading packages"),
    ("extracting archives", "extracting archives"),
    ("installing essential", "installing essential packages"),
    ("installing remaining", "installing packages"),
    ("cleaning package lists", "cleaning up"),
)
_SHRINK = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)


def _sources_uris(text: str, deb822: bool) -> list[str]:
    uris: list[str] = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields = {
                m.group(1).lower(): m.group(2).strip()
                for m in re.finditer(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE)
            }
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                suites = fields.get("suites", "").split()
                if any(not s.endswith(("-security", "-updates", "-backports")) for s in suites):
                    uris.extend(fields.get("uris", "").split())
    else:
        for line in text.splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                args = [p for p in parts[1:] if not p.startswith("[")]
                if args and len(args) >= 2 and not args[1].endswith(("-security", "-updates", "-backports")):
                    uris.append(args[0])
    return uris


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt on this host uses.

    Raises:
        ImageError: no_mirror when none is configured.
    """
    explicit = os.environ.get(MIRROR_ENV)
    if explicit:
        return explicit
    candidates: list[str] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        candidates += _sources_uris(path.read_text(errors="replace"), deb822=True)
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            candidates += _sources_uris(path.read_text(errors="replace"), deb822=False)
    for uri in candidates:
        if "debian" in uri and "security" not in uri:
            return uri
    if candidates:
        return candidates[0]
    raise ImageError(
        "no Debian mirror is configured in apt's sources",
        code="no_mirror",
        hint=f"set {MIRROR_ENV}=http://your.mirror/debian",
    )


def bootstrap_tool(*, unprivileged: bool = False) -> tuple[str, str]:
    """('mmdebstrap'|'debootstrap', path); a normal user's build needs mmdebstrap (unshare mode).

    Raises:
        ImageError: no_bootstrap_tool.
    """
    for tool in ("mmdebstrap",) if unprivileged else ("mmdebstrap", "debootstrap"):
        path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
        if path:
            return tool, path
    if unprivileged:
        raise ImageError(
            "building an environment as a normal user needs mmdebstrap (debootstrap needs root)",
            code="no_bootstrap_tool",
            hint="install it: apt-get install mmdebstrap (as root)",
        )
    raise ImageError(
        "neither mmdebstrap nor debootstrap is installed",
        code="no_bootstrap_tool",
        hint="install one: apt-get install mmdebstrap",
    )


def check_unprivileged_build() -> None:
    """Refuse early, naming every fix, when a normal user's build cannot get its user namespace.

    Raises:
        ImageError: userns_unavailable.
    """
    missing = [r for r in requirements() if not r.ok]
    if missing:
        raise ImageError(
            "building an environment as a normal user needs a user namespace over subordinate ids: "
            + "; ".join(r.detail for r in missing),
            code="userns_unavailable",
            remedy=operator_remedy("; ".join([*(r.fix for r in missing if r.fix), "see every check"]), "doctor"),
        )


def _command(tool: str, path: str, spec: EnvSpec, dest: Path, mirror: str, *, unprivileged: bool = False) -> list[str]:
    packages = ",".join(spec.packages)
    if tool == "mmdebstrap":
        argv = [path, "--variant=minbase", f"--include={packages}"]
        if unprivileged:
            argv += ["--mode=unshare", "--format=tar"]
        hooks = Path("/usr/share/mmdebstrap/hooks/merged-usr")
        if hooks.is_dir():
            argv.append(f"--hook-dir={hooks}")
        argv += [f"--dpkgopt={opt}" for opt in _SHRINK]
        return [*argv, spec.suite, str(dest), mirror]
    return [path, "--variant=minbase", f"--include={packages}", spec.suite, str(dest), mirror]


def run_bootstrap(spec: EnvSpec, dest: Path, progress: ProgressFn | None = None) -> str:
    """Bootstrap `spec` into `dest` (absent or empty); return the tool used.

    Raises:
        ImageError: build_failed (with the tool's last lines), disk_full,
            no_bootstrap_tool, userns_unavailable (a normal user without
            user namespaces, newuidmap or subordinate ids).
    """
    unprivileged = os.geteuid() != 0
    tool, path = bootstrap_tool(unprivileged=unprivileged)
    if unprivileged:
        check_unprivileged_build()
    mirror = debian_mirror()
    # A normal user's mmdebstrap writes a tarball beside `dest`, unpacked below.
    output = dest.with_name(f"{dest.name}.tar") if unprivileged else dest
    argv = _command(tool, path, spec, output, mirror, unprivileged=unprivileged)
    unshare = shutil.which("unshare")
    if not unprivileged and unshare:
        # As root the tool mounts /proc, /sys and /dev into the target; in a
        # private mount namespace those mounts die with it, even on a kill.
        argv = [unshare, "--mount", "--propagation", "private", "--", *argv]
    total = len(_STEPS) + 1
    done = 0
    if progress:
        progress(f"{tool}: starting ({mirror})", done, total)
    tail: deque[str] = deque(maxlen=30)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise ImageError(f"cannot run {tool}: {exc.strerror}", code="build_failed") from None
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", errors="replace").rstrip()
        tail.append(line)
        for index, (needle, label) in enumerate(_STEPS):
            if needle in line and index + 1 > done:
                done = index + 1
                if progress:
                    progress(label, done, total)
    code = proc.wait()
    if code != 0:
        raise _failure(tool, spec.name, code, tail, mirror)
    if unprivileged:
        if progress:
            progress("unpacking the image", total - 1, total)
        _unpack(output, dest)
    return tool


def _unpack(tarball: Path, dest: Path) -> None:
    """Unpack mmdebstrap's tarball into `dest` as the user, then drop the tarball.

    Raises:
        ImageError: layer_rejected, layer_corrupt, layer_write_failed.
    """
    try:
        dest.mkdir(mode=0o755, exist_ok=True)
        apply_layer(tarball, dest)  # a Debian tree has no .wh. entries
    finally:
        tarball.unlink(missing_ok=True)


# Lines of a failed bootstrap that point at the mirror or the network, and at the user namespace.
_NETWORK_MARKERS = (
    "Failed to fetch",
    "Could not resolve",
    "Temporary failure resolving",
    "Could not connect",
    "Connection failed",
    "Connection timed out",
    "Unable to connect",
    "Release file",
    "does not have a Release",
)
_USERNS_MARKERS = ("chroot mode", "unshare", "newuidmap", "newgidmap", "subuid", "subgid", "user namespace")


def _failure(tool: str, env: str, code: int, tail: deque[str], mirror: str) -> ImageError:
    """Why a bootstrap failed and what to do about it, from what it printed (the mirror only when it is to blame)."""
    text = "\n".join(tail)
    if "No space left on device" in text:
        return ImageError(f"{tool} ran out of disk space building {env}", code="disk_full", remedy=FREE_IMAGE_SPACE)
    message = f"{tool} failed building {env} (exit {code}): {_cause(tail)}"
    details = {"log_tail": list(tail)}
    if any(marker in text for marker in _NETWORK_MARKERS):
        hint = f"check that the Debian mirror {mirror} is reachable, or set {MIRROR_ENV} to one that is"
        return ImageError(message, code="build_failed", hint=hint, details=details)
    if any(marker in text for marker in _USERNS_MARKERS):
        remedy = operator_remedy("the build could not set up its user namespace; see what is missing", "doctor")
        return ImageError(message, code="build_failed", remedy=remedy, details=details)
    hint = "the tool's last lines are in the error's details (the CLI prints them with --json)"
    return ImageError(message, code="build_failed", hint=hint, details=details)


def _cause(tail: deque[str]) -> str:
    """The most telling line of a failed bootstrap (its last line is only 'failed to run')."""
    lines = [line.strip() for line in tail if line.strip()]
    for marker in ("Failed to fetch", "Could not", "Unable to", "E: "):
        for line in reversed(lines):
            if marker in line and "failed to run" not in line:
                return line
    return lines[-1] if lines else "no output"


def add_mount_points(root: Path) -> None:
    """Create the directories roost mounts over inside `root`, never through a link it holds.

    Raises:
        ImageError: image_unsupported when a mount point or one of its parents is not a directory.
    """
    for mount_point in MOUNT_POINTS:
        current = root
        for part in mount_point.split("/"):
            current = current / part
            try:
                os.mkdir(current, 0o755)
            except FileExistsError:
                if current.is_symlink() or not current.is_dir():
                    raise ImageError(
                        f"/{current.relative_to(root)} in the image is not a directory, and roost mounts at /{mount_point}",
                        code="image_unsupported",
                        hint="roost needs /workspace, /var/lib/roost-agent, /run/roost and /opt/roost to be directories",
                    ) from None


def let_pip_install(root: Path) -> None:
    """Remove Debian's EXTERNALLY-MANAGED marker, so `pip install` works in the env's own python3.

    A workspace is the user's to change: refusing `pip install -e .`, an agent's first command, helps
    nobody there (a venv still keeps Debian's packages apart). Nothing the image holds is followed:
    a link on the way, or a marker that is not a plain file, is left as it is.
    """
    lib = root / "usr" / "lib"
    if not all(_is_real_dir(d) for d in (root / "usr", lib)):
        return
    for entry in os.scandir(lib):
        if entry.name.startswith("python3") and entry.is_dir(follow_symlinks=False):
            marker = Path(entry.path) / "EXTERNALLY-MANAGED"
            if stat.S_ISREG(_lstat_mode(marker)):
                marker.unlink()


def _is_real_dir(path: Path) -> bool:
    return stat.S_ISDIR(_lstat_mode(path))


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


def finish_rootfs(spec: EnvSpec, root: Path) -> None:
    """Create roost's mount points, let pip install, and check the env has what the catalog promises.

    Raises:
        ImageError: image_incomplete naming the missing commands.
    """
    add_mount_points(root)
    let_pip_install(root)
    missing = [
        cmd
        for cmd in spec.expected_commands
        if not any(os.path.lexists(root / d / cmd) for d in ("usr/bin", "bin", "usr/sbin", "sbin"))
    ]
    if missing:
        raise ImageError(
            f"the built {spec.name} lacks {', '.join(missing)}",
            code="image_incomplete",
            hint="the package list in the catalog and the mirror disagree",
        )


def tree_digest(root: Path) -> str:
    """A sha256 over every path, type, mode, link target and file content under `root`.

    Raises:
        ImageError: build_failed when a file in the tree cannot be read.
    """
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            digest.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(full).encode() + b"\0")
            elif stat.S_ISREG(st.st_mode):
                try:
                    with open(full, "rb") as fh:
                        while chunk := fh.read(1 << 20):
                            digest.update(chunk)
                except OSError as exc:
                    raise ImageError(
                        f"cannot read {rel} in the built rootfs: {exc.strerror}", code="build_failed"
                    ) from None
    return "sha256:" + digest.hexdigest()
