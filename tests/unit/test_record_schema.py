"""Workspace records of every shape an earlier roost wrote read as typed boot records, and go back
to disk as the current schema.

`records_v1/` holds records as schema 1 wrote them (taken from real workspaces of each backend,
their home paths made neutral): the backend's facts in one untyped `runtime` object, the image key
among them, socket and disk paths beside the pids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roost.backends.firecracker.boot import FirecrackerBoot
from roost.backends.host_agent import HostAgentBoot
from roost.backends.sandbox.boot import SandboxBoot
from roost.errors import WorkspaceError
from roost.store.records import SCHEMA_VERSION, WorkspaceStore
from roost.workspace.engine import read_boot

OLD_RECORDS = Path(__file__).with_name("records_v1")
KINDS = {"mock": HostAgentBoot, "sandbox": SandboxBoot, "firecracker": FirecrackerBoot}


def _store(tmp_path: Path) -> WorkspaceStore:
    store = WorkspaceStore(tmp_path / "home", read_boot)
    store.ensure()
    return store


def _put(store: WorkspaceStore, data: dict[str, Any]) -> str:
    store.create_dir(data["id"])
    (store.dir(data["id"]) / "workspace.json").write_text(json.dumps(data))
    return str(data["id"])


def _old(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OLD_RECORDS / name).read_text())
    assert data["schema_version"] == 1
    return data


@pytest.mark.parametrize("name", sorted(p.name for p in OLD_RECORDS.glob("*.json")))
def test_a_schema_1_record_reads_with_its_backends_own_typed_boot_record(tmp_path: Path, name: str) -> None:
    old = _old(name)
    runtime = old["runtime"]
    store = _store(tmp_path)

    record = store.load(_put(store, old))

    assert record.schema_version == SCHEMA_VERSION
    assert (record.id, record.state, record.name, record.labels) == (
        old["id"],
        old["state"],
        old["name"],
        old["labels"],
    )
    assert record.image == runtime.get("image")
    if not runtime:
        assert record.boot is None  # a create that never got as far as booting
        return
    assert type(record.boot) is KINDS[old["backend"]]
    kept = record.boot.to_json()
    # Every fact but the paths roost derives (and the image, now the record's own) is kept as written.
    derived = {"socket", "api_socket", "vsock_socket", "disk", "image"}
    assert set(runtime) - derived <= set(kept)
    assert derived.isdisjoint(kept)
    assert {key: kept[key] for key in kept if key in runtime} == {key: runtime[key] for key in kept if key in runtime}


def test_an_old_sandbox_keeps_what_its_start_needs_to_adopt_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    record = store.load(_put(store, _old("sandbox-legacy-stopped.json")))
    assert isinstance(record.boot, SandboxBoot)
    assert record.boot.id_map is None  # a start moves its files under the user namespace's ids
    assert set(record.boot.cgroups.not_enforced) == {"memory", "pids", "cpu"}


def test_a_jailed_vm_keeps_its_jail_and_the_binary_it_is_named_after(tmp_path: Path) -> None:
    store = _store(tmp_path)
    record = store.load(_put(store, _old("firecracker-jailed-running.json")))
    assert isinstance(record.boot, FirecrackerBoot)
    assert record.boot.jail is not None
    assert (record.boot.jail.jailer, record.boot.jail.uid, record.boot.jail.cgroup_version) == (
        "/usr/local/bin/jailer",
        65534,
        1,
    )
    assert record.boot.exec_name == "firecracker"
    assert (record.boot.plan.agent_port, record.boot.plan.vcpus, record.boot.plan.mem_mib) == (1024, 1, 256)


@pytest.mark.parametrize("name", sorted(p.name for p in OLD_RECORDS.glob("*.json")))
def test_a_schema_1_record_is_saved_as_the_current_schema_and_reads_the_same(tmp_path: Path, name: str) -> None:
    store = _store(tmp_path)
    record = store.load(_put(store, _old(name)))

    store.save(record)

    written = json.loads((store.dir(record.id) / "workspace.json").read_text())
    assert written["schema_version"] == SCHEMA_VERSION
    assert "runtime" not in written
    assert store.load(record.id) == record


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("an unknown backend", {"backend": "teleporter"}),
        ("a runtime that is not an object", {"runtime": ["agent_pid", 1]}),
        ("an agent pid that is not a number", {"runtime": {"workspace": "ws-5e4d3c2b1a", "agent_pid": "12"}}),
        ("an id map that is not one", {"runtime": {"workspace": "ws-5e4d3c2b1a", "agent_pid": 1, "id_map": [1]}}),
    ],
)
def test_a_boot_record_its_backend_cannot_read_is_workspace_corrupt_with_the_way_out(
    tmp_path: Path, what: str, change: dict[str, Any]
) -> None:
    store = _store(tmp_path)
    ws_id = _put(store, {**_old("sandbox-running.json"), **change})
    with pytest.raises(WorkspaceError) as caught:
        store.load(ws_id)
    assert caught.value.code == "workspace_corrupt"
    assert f"roost.workspace({ws_id!r}).delete(force=True)" in caught.value.hint


def test_a_current_record_with_a_boot_that_is_not_an_object_is_workspace_corrupt(tmp_path: Path) -> None:
    store = _store(tmp_path)
    record = store.load(_put(store, _old("mock-running.json")))
    store.save(record)
    path = store.dir(record.id) / "workspace.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "boot": "agent_pid=1"}))
    with pytest.raises(WorkspaceError) as caught:
        store.load(record.id)
    assert caught.value.code == "workspace_corrupt"


def _schema_2(old: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 record as schema 2 wrote it: boot and image apart, the policy still a mode name."""
    runtime = dict(old["runtime"])
    image = runtime.pop("image", None)
    return {**{k: v for k, v in old.items() if k != "runtime"}, "schema_version": 2, "boot": runtime, "image": image}


def test_a_schema_2_record_reads_with_the_off_policy_no_ports_and_no_gateway(tmp_path: Path) -> None:
    store = _store(tmp_path)
    record = store.load(_put(store, _schema_2(_old("mock-running.json"))))
    assert (record.network_policy.mode, record.network_policy.allow, record.ports, record.network) == (
        "off",
        (),
        (),
        None,
    )
    store.save(record)
    written = json.loads((store.dir(record.id) / "workspace.json").read_text())
    assert written["schema_version"] == SCHEMA_VERSION
    assert (written["network_policy"], written["ports"], written["network"]) == ({"mode": "off", "allow": []}, [], None)


def test_a_policy_and_its_ports_go_to_disk_and_come_back_as_they_were(tmp_path: Path) -> None:
    from roost.network.policy import parse_policy, parse_publish

    store = _store(tmp_path)
    record = store.load(_put(store, _schema_2(_old("mock-running.json"))))
    policy = parse_policy("allowlist", ["@pypi", "*.example.com:8443", "10.0.0.0/8"])
    ports = ((parse_publish("8000"), None), (parse_publish("127.0.0.2:18000:9000"), "web"))
    gateway = {"gateway_pid": 4242, "started_at": "123", "policy": policy.to_json(), "ports": []}
    store.save(record.replace(network_policy=policy, ports=ports, network=gateway))
    again = store.load(record.id)
    assert (again.network_policy, again.ports, again.network) == (policy, ports, gateway)


@pytest.mark.parametrize(
    "network_policy",
    [{"mode": "open"}, {"mode": "allowlist", "allow": ["@nosuchpreset"]}, ["egress"]],
)
def test_a_record_whose_policy_does_not_parse_is_corrupt_with_the_way_out(
    tmp_path: Path, network_policy: object
) -> None:
    store = _store(tmp_path)
    data = _schema_2(_old("mock-running.json"))
    data = {**data, "schema_version": SCHEMA_VERSION, "network_policy": network_policy, "ports": [], "network": None}
    with pytest.raises(WorkspaceError) as caught:
        store.load(_put(store, data))
    assert caught.value.code == "workspace_corrupt" and caught.value.remedy is not None


def test_a_record_from_before_secrets_has_none_and_attached_secrets_round_trip(tmp_path: Path) -> None:
    store = _store(tmp_path)
    record = store.load(_put(store, _schema_2(_old("mock-running.json"))))
    assert (record.secrets, record.secret_salt) == ({}, None)
    store.save(record.replace(secrets={"TOKEN": ["env", "file"]}, secret_salt="ab" * 32))
    again = store.load(record.id)
    assert (again.secrets, again.secret_salt) == ({"TOKEN": ["env", "file"]}, "ab" * 32)


@pytest.mark.parametrize(("secrets", "salt"), [(["TOKEN"], None), ({"TOKEN": "env"}, None), ({}, "not hex")])
def test_a_record_whose_secrets_are_not_names_and_modes_is_corrupt(
    tmp_path: Path, secrets: object, salt: object
) -> None:
    store = _store(tmp_path)
    record = store.load(_put(store, _schema_2(_old("mock-running.json"))))
    store.save(record)
    path = store.dir(record.id) / "workspace.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "secrets": secrets, "secret_salt": salt}))
    with pytest.raises(WorkspaceError) as caught:
        store.load(record.id)
    assert caught.value.code == "workspace_corrupt"
