"""Workspace records of every schema version this roost reads, as the current version.

Version 2 (current): the backend's boot record in `boot` (null until the
backend has booted the workspace), the environment image's key in `image`.

Version 1: both in one untyped `runtime` object (empty until booted), beside
paths roost derives again (`socket`, `api_socket`, `vsock_socket`, `disk`);
each backend reads its own facts from it as they were, ignoring the rest.

Imports: the standard library only.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 2


def current_form(data: object) -> dict[str, Any]:
    """A stored record as this version writes it (an older version's upgraded).

    Raises:
        ValueError: not a record of a version this roost reads.
    """
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("schema_version")
    if version == 1:
        runtime = data.get("runtime", {})
        if not isinstance(runtime, dict):
            raise ValueError("runtime must be an object")
        image = runtime.get("image")
        data = {k: v for k, v in data.items() if k != "runtime"}
        return {**data, "schema_version": SCHEMA_VERSION, "image": image, "boot": runtime or None}
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema_version {version!r}, this roost reads 1 and {SCHEMA_VERSION}")
    return data
