"""Where roost keeps its state and which defaults apply, read from the environment.

This module imports nothing from roost.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "ROOST_HOME"
BACKEND_ENV = "ROOST_BACKEND"
DEFAULT_ENV = "debian:12"


def default_home() -> Path:
    """`$ROOST_HOME`, else `$XDG_DATA_HOME/roost`, else `~/.local/share/roost`."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME")
    base = Path(data_home).expanduser() if data_home else Path.home() / ".local" / "share"
    return base / "roost"


def requested_backend() -> str | None:
    value = os.environ.get(BACKEND_ENV, "").strip()
    return value or None


IMAGES_ENV = "ROOST_IMAGES"


def images_dir(home: Path) -> Path:
    """`$ROOST_IMAGES`, else `<home>/images`: shareable between homes (tests do)."""
    explicit = os.environ.get(IMAGES_ENV)
    return Path(explicit).expanduser() if explicit else home / "images"


def package_dir() -> Path:
    """Where the installed `roost` package lives (its agent code is bound into, or copied onto, guests)."""
    return Path(__file__).resolve().parent
