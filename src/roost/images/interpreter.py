"""Which python3 runs roost's agent in an image: its own, or roost's bundle (python_bundle.py).

Decided once, when an image is pulled, by reading the image's files (nothing in it is run):
the image's python3 is used when it is an x86-64 ELF program whose loader the image has and
whose version is at least the agent's minimum (3.11), found as the agent would find it
(`/usr/bin/python3`, then `/usr/local/bin/python3`, then `/bin/python3`). Otherwise the
bundle runs the agent, which needs nothing from the image; an image whose programs are built
for another machine cannot run here at all (`image_unsupported`).

Links inside the image are followed as the image sees them (an absolute link is relative to
its root) and never lead out of it.

Imports: errors, images.elf, images.python_bundle (the bundle's path) and the standard library.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from roost.errors import ImageError
from roost.images.elf import MACHINE_X86_64, read_elf
from roost.images.python_bundle import BUNDLE_INTERPRETER

__all__ = ["AGENT_MIN_PYTHON", "choose_interpreter", "resolve_in_image"]

AGENT_MIN_PYTHON = (3, 11)
PYTHON_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")
# Programs an image of any distribution has one of: what tells its machine when python3 is absent.
MACHINE_PROBES = ("/bin/sh", "/usr/bin/env", "/bin/busybox", "/usr/bin/busybox", "/bin/ls")
_MAX_LINKS = 40
_VERSION_RE = re.compile(r"python3\.(\d+)")


def _unsupported(message: str, hint: str) -> ImageError:
    return ImageError(message, code="image_unsupported", hint=hint)


def resolve_in_image(root: Path, path: str) -> Path | None:
    """The host path of the file `path` names inside the image at `root`, links followed the
    way the image would follow them; None when it does not exist or the links loop."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        current = root.joinpath(*resolved, part)
        if not os.path.lexists(current):
            return None
        if os.path.islink(current):
            hops += 1
            if hops > _MAX_LINKS:
                return None
            target = os.readlink(current)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def _python_version(root: Path, candidate: str, real: Path) -> tuple[int, int] | None:
    """The python's version, from its file name or the standard library beside it."""
    match = _VERSION_RE.fullmatch(real.name)
    if match:
        return 3, int(match.group(1))
    prefix = Path(candidate).parent.parent
    found = []
    for lib in (root / prefix.relative_to("/") / "lib").glob("python3.*"):
        minor = _VERSION_RE.fullmatch(lib.name)
        if minor and (lib / "os.py").is_file():
            found.append((3, int(minor.group(1))))
    return max(found) if len(found) == 1 else None


def _usable_python(root: Path) -> str | None:
    """The image's python3 the agent can run on, as the image names it."""
    for candidate in PYTHON_CANDIDATES:
        real = resolve_in_image(root, candidate)
        if real is None or not real.is_file():
            continue
        elf = read_elf(real)
        if elf is None or elf.machine != MACHINE_X86_64:
            continue
        if elf.interpreter is not None and resolve_in_image(root, elf.interpreter) is None:
            continue
        version = _python_version(root, candidate, real)
        if version is not None and version >= AGENT_MIN_PYTHON:
            return candidate
    return None


def _check_machine(root: Path, reference: str) -> None:
    """Refuse an image whose programs are for another machine (the first ELF probe decides)."""
    for probe in MACHINE_PROBES:
        real = resolve_in_image(root, probe)
        elf = read_elf(real) if real is not None and real.is_file() else None
        if elf is not None:
            if elf.machine != MACHINE_X86_64:
                raise _unsupported(
                    f"{reference} holds programs for ELF machine {elf.machine}, not x86-64 ({probe})",
                    "roost runs linux/amd64 images: pick a tag published for that platform",
                )
            return


def choose_interpreter(root: Path, reference: str, architecture: str | None = None) -> str:
    """The python3 that runs the agent in the image unpacked at `root`: its own, or the bundle's.

    Raises:
        ImageError: image_unsupported when the image is not for linux/amd64.
    """
    if architecture not in (None, "", "amd64"):
        raise _unsupported(
            f"{reference} is built for {architecture}, not amd64",
            "roost runs linux/amd64 images: pick a tag published for that platform",
        )
    _check_machine(root, reference)
    return _usable_python(root) or BUNDLE_INTERPRETER
