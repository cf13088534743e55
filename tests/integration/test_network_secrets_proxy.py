"""Proxy-mode secrets through the real gateway: the workspace sends a placeholder, the allowed host gets the value.

The test host's HTTPS certificate is given to the gateway as its upstream
trust (ROOST_NETWORK_UPSTREAM_CA); the workspace's client trusts only the
workspace's CA for intercepted names. The test host's /echo answers with
what it received.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from network_gateway_fixtures import NEEDS_NETWORK, Attached, StartWorkspace
from network_lab import LabHost

from roost.network import Substitution
from roost.network.attachment import read_decisions, update
from roost.network.authority import CA_CERT_NAME, workspace_ca_pem
from roost.network.intercept import UPSTREAM_CA_VARIABLE
from roost.network.policy import parse_policy

pytestmark = NEEDS_NETWORK

VALUE = f"real-{secrets.token_hex(12)}".encode()
BODY_VALUE = f"body-{secrets.token_hex(12)}".encode()
API = Substitution("API_TOKEN", "roost-secret-api0api0api0", VALUE, ("allowed.test",))
OTHER = Substitution("OTHER_KEY", "roost-secret-oth0oth0oth0", BODY_VALUE, ("other.test",), in_body=True)


@pytest.fixture
def upstream_trusts_test_host(test_host: LabHost, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(UPSTREAM_CA_VARIABLE, str(test_host.cert))
    yield


def workspace_ca(ws: Attached, tmp_path: Path) -> str:
    """The workspace's CA certificate, where the client inside the namespace reads it."""
    workspace_ca_pem(ws.net_dir)
    copy = tmp_path / f"workspace-ca-{ws.boot.gateway_pid}.pem"
    shutil.copyfile(ws.net_dir / CA_CERT_NAME, copy)
    return str(copy)


def bearer(placeholder: str) -> list[Any]:
    return ["GET", {"Authorization": f"Bearer {placeholder}"}, ""]


def test_the_allowed_host_gets_the_value_on_every_request_while_the_workspace_sent_the_placeholder(
    workspace: StartWorkspace, test_host: LabHost, tmp_path: Path, upstream_trusts_test_host: None
) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test", "other.test"]), substitutions=[API])
    ca = workspace_ca(ws, tmp_path)
    results = ws.workspace.run(
        ["resolve", "allowed.test"],
        ["echo", test_host.address, 443, "allowed.test", ca, [bearer(API.placeholder), bearer(API.placeholder)]],
        ["echo", test_host.address, 80, "allowed.test", None, [bearer(API.placeholder)]],
    )
    real = f"Bearer {VALUE.decode()}"
    assert [answer["authorization"] for answer in results[1]] == [real, real]
    assert results[2][0]["authorization"] == real
    assert ("allowed.test", 443, "allowed", "allowed_name") in ws.decisions("tcp")


def test_a_placeholder_to_a_host_not_allowed_for_it_goes_out_unchanged_and_is_logged(
    workspace: StartWorkspace, test_host: LabHost, tmp_path: Path, upstream_trusts_test_host: None
) -> None:
    ws = workspace(parse_policy("egress"), substitutions=[API, OTHER])
    ca = workspace_ca(ws, tmp_path)
    results = ws.workspace.run(
        ["resolve", "other.test"],
        ["echo", test_host.address, 443, "other.test", ca, [bearer(API.placeholder)]],
        ["echo", test_host.address, 80, "other.test", None, [bearer(API.placeholder)]],
        # A Host header alone proves nothing: allowed.test was not resolved to this address here.
        ["echo", test_host.address, 80, "allowed.test", None, [bearer(API.placeholder)]],
    )
    sent = f"Bearer {API.placeholder}"
    assert [answers[0]["authorization"] for answers in results[1:]] == [sent, sent, sent]
    logged = [(d.name, d.port, d.reason, d.secret) for d in read_decisions(ws.net_dir) if d.secret is not None]
    assert logged == [
        ("other.test", 443, "placeholder_to_unlisted_host", "API_TOKEN"),
        ("other.test", 80, "placeholder_to_unlisted_host", "API_TOKEN"),
        ("allowed.test", 80, "placeholder_to_unlisted_host", "API_TOKEN"),
    ]


def test_in_body_puts_the_value_in_the_body_and_fixes_its_content_length(
    workspace: StartWorkspace, test_host: LabHost, tmp_path: Path, upstream_trusts_test_host: None
) -> None:
    ws = workspace(parse_policy("egress"), substitutions=[OTHER])
    ca = workspace_ca(ws, tmp_path)
    body = f'{{"key": "{OTHER.placeholder}"}}'
    results = ws.workspace.run(["echo", test_host.address, 443, "other.test", ca, [["POST", {}, body]]])
    expected = f'{{"key": "{BODY_VALUE.decode()}"}}'
    assert results[0][0]["body"] == expected
    assert results[0][0]["content_length"] == len(expected)


def test_a_server_that_cannot_prove_the_name_never_gets_the_value(
    workspace: StartWorkspace, test_host: LabHost, tmp_path: Path
) -> None:
    ws = workspace(parse_policy("egress"), substitutions=[API])  # the gateway does not trust the test host's CA
    ca = workspace_ca(ws, tmp_path)
    assert ws.workspace.run(["echo", test_host.address, 443, "allowed.test", ca, [bearer(API.placeholder)]]) == [
        "refused"
    ]


def test_flows_for_no_secret_are_not_intercepted_and_removed_secrets_stop_being(
    workspace: StartWorkspace, test_host: LabHost, tmp_path: Path, upstream_trusts_test_host: None
) -> None:
    ws = workspace(parse_policy("egress"), substitutions=[API])
    ca = workspace_ca(ws, tmp_path)
    # other.test is no secret's host: the test host's own certificate reaches the client.
    untouched = ["echo", test_host.address, 443, "other.test", str(test_host.cert), [bearer(API.placeholder)]]
    intercepted = ["echo", test_host.address, 443, "allowed.test", ca, [bearer(API.placeholder)]]
    first = ws.workspace.run(untouched, intercepted)
    assert [answers[0]["authorization"] for answers in first] == [
        f"Bearer {API.placeholder}",
        f"Bearer {VALUE.decode()}",
    ]
    ws.boot = update(ws.net_dir, ws.boot, parse_policy("egress"), [], substitutions=())
    assert ws.workspace.run(intercepted) == ["refused"]  # the workspace's CA is no longer in the way


def test_the_value_is_in_no_file_log_argv_or_environment_of_the_gateway(
    workspace: StartWorkspace, test_host: LabHost, tmp_path: Path, upstream_trusts_test_host: None
) -> None:
    ws = workspace(parse_policy("egress"), substitutions=[API, OTHER])
    ca = workspace_ca(ws, tmp_path)
    ws.workspace.run(
        ["echo", test_host.address, 443, "allowed.test", ca, [bearer(API.placeholder)]],
        ["echo", test_host.address, 443, "other.test", ca, [bearer(API.placeholder), ["POST", {}, OTHER.placeholder]]],
    )
    pid = ws.boot.gateway_pid
    places = [Path(f"/proc/{pid}/cmdline"), Path(f"/proc/{pid}/environ")]
    places += [path for path in ws.net_dir.rglob("*") if path.is_file()]
    assert any(path.name == "decisions.jsonl" for path in places)
    for path in places:
        data = path.read_bytes()
        for value in (VALUE, BODY_VALUE):
            assert value not in data, path
