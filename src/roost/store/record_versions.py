"""Workspace records of every schema version this roost reads, as the current version.

Version 3 (current): `network_policy` is an object (`{"mode", "allow"}`:
roost.network.policy's JSON form), beside the ports the workspace publishes
(`ports`) and the running gateway's own record (`network`, null when none runs).
Secrets came within version 3: `secrets` (attached names -> modes) and
`secret_salt` are absent from records written before them, and read as none; so are
the services kept for the next start (`kept_services`), the shells open at the last stop
(`shells_at_stop`) and what the last start brought back (`last_start`).

Version 2: the backend's boot record in `boot` (null until the backend has
booted the workspace), the environment image's key in `image`; the network
policy a mode name (`"off"`, the only one a workspace could have).

Version 1: both in one untyped `runtime` object (empty until booted), beside
paths roost derives again (`socket`, `api_socket`, `vsock_socket`, `disk`);
each backend reads its own facts from it as they were, ignoring the rest.

Imports: the standard library only.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 3


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
        data, version = {**data, "schema_version": 2, "image": image, "boot": runtime or None}, 2
    if version == 2:
        mode = data.get("network_policy", "off")
        if not isinstance(mode, str):
            raise ValueError("network_policy must be a mode name")
        data = {**data, "schema_version": SCHEMA_VERSION, "network_policy": {"mode": mode, "allow": []}}
        return {**data, "ports": [], "network": None}
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema_version {version!r}, this roost reads 1 to {SCHEMA_VERSION}")
    return data
