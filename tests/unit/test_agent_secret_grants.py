"""Secrets given to one process by the agent: env values in its env only, files 0400 on a tmpfs, removed after."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from roost.agent.secret_files import ProcessSecrets
from roost.protocol import OpError
from roost.protocol.ops.secrets import SecretGrant

VALUE = b"tok-\xff-binary"


def test_env_grants_add_variables_without_touching_the_given_environment() -> None:
    base = {"PATH": "/bin"}
    granted = ProcessSecrets([SecretGrant.of("TOKEN", "env", "API_KEY", b"abc")])
    assert granted.merged(base) == {"PATH": "/bin", "API_KEY": "abc"} and base == {"PATH": "/bin"}
    assert "API_KEY" not in os.environ


def test_file_grants_are_owner_read_only_files_in_a_private_directory_removed_after(tmp_path: Path) -> None:
    granted = ProcessSecrets([SecretGrant.of("TOKEN", "file", "ROOST_SECRET_FILE_TOKEN", VALUE)], root=str(tmp_path))
    path = Path(granted.env["ROOST_SECRET_FILE_TOKEN"])
    assert path.read_bytes() == VALUE
    assert stat.S_IMODE(path.stat().st_mode) == 0o400 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    granted.remove()
    granted.remove()
    assert not path.parent.exists()


def test_a_grant_never_shows_its_value_in_a_repr_or_an_error() -> None:
    grant = SecretGrant.of("TOKEN", "env", "API_KEY", b"hunter2-value")
    assert "hunter2" not in repr(grant) and "aHVudGVyMi" not in repr(grant)
    with pytest.raises(OpError) as caught:
        SecretGrant.of("TOKEN", "env", "API_KEY", b"nul\0hunter2")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(OpError):
        SecretGrant.of("TOKEN", "env", "1BAD", b"x")


def test_the_default_root_is_a_tmpfs() -> None:
    from roost.agent.secret_files import SECRET_FILES_ROOT

    with open("/proc/self/mounts") as mounts:
        kinds = {line.split()[1]: line.split()[2] for line in mounts}
    assert kinds.get(SECRET_FILES_ROOT) == "tmpfs"
