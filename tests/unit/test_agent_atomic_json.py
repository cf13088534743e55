"""The agent's records (shells, services, snapshot manifests) are replaced whole, privately, or not at all."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from roost.agent.fs.atomic_json import write_json


def test_a_record_is_replaced_whole_in_a_private_directory_it_makes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "shells" / "sh-1.json"
    write_json(str(path), {"state": "running"})
    write_json(str(path), {"state": "closed"}, durable=True)
    assert json.loads(path.read_text()) == {"state": "closed"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert os.listdir(path.parent) == ["sh-1.json"]


def test_a_record_that_cannot_be_written_leaves_the_old_one_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    write_json(str(path), {"state": "ready"})
    with pytest.raises(TypeError):
        write_json(str(path), {"state": object()})
    assert json.loads(path.read_text()) == {"state": "ready"}
    assert os.listdir(tmp_path) == ["record.json"]
