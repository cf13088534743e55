"""The workspace layer's secret rules, without a workspace: attach entries, process uses, and what a gateway is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.backends.mock import MockBackend
from roost.backends.sandbox.backend import SandboxBackend
from roost.errors import InvalidArgument, SecretError, SecretNotFound
from roost.secrets.placeholders import new_salt, placeholder_for
from roost.secrets.store import SecretStore
from roost.store.records import WorkspaceRecord
from roost.workspace.secrets import attachments, parse_uses, proxy_substitutions


def _record(secrets: dict[str, list[str]], salt: str) -> WorkspaceRecord:
    now = "2026-01-01T00:00:00Z"
    return WorkspaceRecord("ws-1", "debian:12", "sandbox", "running", now, now, secrets=secrets, secret_salt=salt)


def test_uses_name_a_variable_a_file_variable_or_a_file_path() -> None:
    uses = parse_uses(["A", "B=MY_B"], ["C", "D=D_PATH", "E=/dev/shm/e"])
    assert [(u.name, u.mode, u.variable, u.path) for u in uses] == [
        ("A", "env", "A", None),
        ("B", "env", "MY_B", None),
        ("C", "file", "ROOST_SECRET_FILE_C", None),
        ("D", "file", "D_PATH", None),
        ("E", "file", "ROOST_SECRET_FILE_E", "/dev/shm/e"),
    ]
    for bad in ((["A=1X"], []), (["A", "B=A"], []), ([], ["A=/workspace/a"]), ("A", [])):
        with pytest.raises(InvalidArgument):
            parse_uses(*bad)  # type: ignore[arg-type]


def test_attaching_checks_the_store_the_modes_and_what_the_backend_and_network_can_serve(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("PLAIN", b"value-1")
    store.set("WEB", b"value-2", modes=["env", "proxy"], hosts=["api.example.com"])
    sandbox, mock = SandboxBackend.__new__(SandboxBackend), MockBackend.__new__(MockBackend)
    assert attachments(tmp_path, mock, "off", ["PLAIN", "WEB"]) == {"PLAIN": ["env", "file"], "WEB": ["env"]}
    assert attachments(tmp_path, sandbox, "egress", ["WEB:proxy"], {"WEB": ["env"]}) == {"WEB": ["env", "proxy"]}
    with pytest.raises(SecretNotFound):
        attachments(tmp_path, sandbox, "egress", ["NOPE"])
    for backend, network, entry in (
        (mock, "egress", "WEB:proxy"),
        (sandbox, "off", "WEB:proxy"),
        (sandbox, "egress", "PLAIN:proxy"),
    ):
        with pytest.raises(SecretError) as refused:
            attachments(tmp_path, backend, network, [entry])
        assert refused.value.code == "secret_mode_unsupported" and refused.value.hint


def test_a_gateway_gets_each_proxy_secret_with_its_placeholder_value_and_hosts_and_nothing_else(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("WEB", b"value-2", modes=["proxy"], hosts=["api.example.com", "*.example.org"])
    store.set("PLAIN", b"value-1")
    salt = new_salt()
    record = _record({"WEB": ["proxy"], "PLAIN": ["env"], "GONE": ["proxy"]}, salt)
    (web,) = proxy_substitutions(tmp_path, record)
    assert (web.name, web.value, web.hosts) == ("WEB", b"value-2", ("api.example.com", "*.example.org"))
    assert web.placeholder == placeholder_for("ws-1", "WEB", bytes.fromhex(salt))
    assert not web.in_body
    store.set("WEB", b"value-2", modes=["proxy"], hosts=["api.example.com"], in_body=True)
    (web,) = proxy_substitutions(tmp_path, record)
    assert web.in_body and SecretStore(tmp_path).get("WEB").in_body
    store.set("WEB", b"value-3", modes=["env"])  # set again without proxy mode: its placeholder goes out as it is
    assert proxy_substitutions(tmp_path, record) == ()
