"""The host's secret store: encrypted at rest, names and modes checked, the key apart and private."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from roost.errors import InvalidArgument, SecretNotFound, StorageError
from roost.secrets.placeholders import PLACEHOLDER_PREFIX, new_salt, placeholder_for
from roost.secrets.store import SecretStore

VALUE = b"tok-3f9a1c77e2b5"


def _bytes_under(root: Path) -> bytes:
    return b"".join(path.read_bytes() for path in root.rglob("*") if path.is_file())


def test_a_value_set_is_read_back_and_never_stored_in_clear(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    info = store.set("API_TOKEN", VALUE, modes=["env"])
    assert (info.name, info.modes, info.hosts) == ("API_TOKEN", ("env",), ())
    assert store.value("API_TOKEN") == VALUE
    stored = _bytes_under(tmp_path)
    assert VALUE not in stored and base64.b64encode(VALUE) not in stored


def test_the_store_directory_is_private_and_its_files_owner_only(tmp_path: Path) -> None:
    SecretStore(tmp_path).set("A", VALUE)
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    for name in ("store.json", "key"):
        assert stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode) == 0o600


def test_list_shows_names_modes_hosts_body_rewriting_and_set_time_only(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("B", VALUE, modes=["proxy", "env"], hosts=["api.example.com", "*.example.org"])
    store.set("A", b"other")
    listed = [entry.to_dict() for entry in store.list()]
    assert [entry["name"] for entry in listed] == ["A", "B"]
    assert list(listed[1]["modes"]) == ["env", "proxy"]
    assert list(listed[1]["hosts"]) == ["api.example.com", "*.example.org"]
    assert all(set(entry) == {"name", "modes", "hosts", "set_at", "in_body"} for entry in listed)
    assert [entry["in_body"] for entry in listed] == [False, False]


def test_delete_forgets_a_secret_and_unknown_names_are_secret_not_found(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("A", VALUE)
    store.delete("A")
    with pytest.raises(SecretNotFound) as caught:
        store.value("A")
    assert caught.value.code == "secret_not_found" and "roost.secrets.set('A')" in caught.value.hint
    with pytest.raises(SecretNotFound):
        store.delete("A")


@pytest.mark.parametrize("name", ["", "1ABC", "a-b", "x" * 65, "has space"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgument):
        SecretStore(tmp_path).set(name, VALUE)


def test_bad_modes_empty_values_and_proxy_without_hosts_are_refused(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    for bad in (
        lambda: store.set("A", VALUE, modes=["mail"]),
        lambda: store.set("A", b""),
        lambda: store.set("A", VALUE, modes=["proxy"]),
        lambda: store.set("A", VALUE, modes=["proxy"], hosts=["10.0.0.0/8"]),
        lambda: store.set("A", VALUE, modes=["env"], in_body=True),
    ):
        with pytest.raises(InvalidArgument) as caught:
            bad()
        assert VALUE.decode() not in str(caught.value)
    assert store.list() == []


def test_a_value_moved_under_another_name_does_not_decrypt(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("A", VALUE)
    store.set("B", b"other")
    path = tmp_path / "secrets" / "store.json"
    data = json.loads(path.read_text())
    data["secrets"]["B"]["sealed"] = data["secrets"]["A"]["sealed"]
    path.write_text(json.dumps(data))
    with pytest.raises(StorageError) as caught:
        store.value("B")
    assert caught.value.code == "secret_store_corrupt"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("A", VALUE)
    (tmp_path / "secrets" / "key").chmod(0o644)
    with pytest.raises(StorageError):
        store.value("A")


def test_placeholders_are_stable_per_workspace_and_secret_and_differ_otherwise() -> None:
    salt = bytes.fromhex(new_salt())
    first = placeholder_for("ws-1", "A", salt)
    assert first.startswith(PLACEHOLDER_PREFIX) and first == placeholder_for("ws-1", "A", salt)
    others = {
        placeholder_for("ws-2", "A", salt),
        placeholder_for("ws-1", "B", salt),
        placeholder_for("ws-1", "A", b"x"),
    }
    assert first not in others and len(others) == 3


class FakeKeyring:
    """A keyring backend that keeps passwords in a dict."""

    def __init__(self) -> None:
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, account: str) -> str | None:
        return self.passwords.get((service, account))

    def set_password(self, service: str, account: str, password: str) -> None:
        self.passwords[(service, account)] = password


def test_a_key_in_the_os_keyring_is_made_once_and_kept_out_of_the_store_directory(tmp_path: Path) -> None:
    from roost.secrets.keys import KEY_BYTES, OsKeyring

    backend = FakeKeyring()
    first = OsKeyring(backend, tmp_path).load_or_make()
    assert len(first) == KEY_BYTES and OsKeyring(backend, tmp_path).load_or_make() == first
    assert list(tmp_path.iterdir()) == []
    backend.passwords = dict.fromkeys(backend.passwords, "not a key")
    with pytest.raises(StorageError):
        OsKeyring(backend, tmp_path).load_or_make()
