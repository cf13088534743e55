"""A workspace's network through the SDK, on every backend: bad requests are refused before anything
exists, a backend that cannot enforce a policy says so, and a workspace shows its policy and ports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from roost import Roost, RoostError, Workspace
from roost.network.attachment import network_available

# (policy, allow, publish) -> the refusal, on every backend.
BAD_REQUESTS: list[tuple[Any, Any, Any]] = [
    ("open", None, None),
    ("allowlist", ["@cargo"], None),
    ("allowlist", ["bad_host!"], None),
    ("allowlist", ["10.0.0.1/8"], None),
    ("allowlist", ["pypi.org:0"], None),
    ("allowlist", ["pypi.org:65536"], None),
    ("allowlist", ["*.*.example.com"], None),
    ("allowlist", "pypi.org:x", None),
    ("allowlist", [5], None),
    ("egress", ["pypi.org"], None),
    (["egress"], None, None),
    ("off", None, ["70000"]),
    ("off", None, [0]),
    ("off", None, ["192.168.1.1:8000:80"]),
    ("off", None, ["8000", "18000:8000"]),
    ("off", None, ["18000:8000", "18000:9000"]),
    ("off", None, {"8000": 1}),
]


@pytest.mark.parametrize(("policy", "allow", "publish"), BAD_REQUESTS)
def test_a_bad_network_request_is_refused_before_anything_is_made(
    roost: Roost, policy: Any, allow: Any, publish: Any
) -> None:
    with pytest.raises(RoostError) as caught:
        roost.create_workspace("debian:12", network_policy=policy, allow=allow, publish=publish)
    assert caught.value.code == "invalid_argument"
    assert caught.value.hint
    assert roost.list_workspaces() == []


def test_run_refuses_a_bad_network_request_before_making_its_workspace(roost: Roost) -> None:
    with pytest.raises(RoostError) as caught:
        roost.run("debian:12", "true", network_policy="allowlist", allow=["@nosuchpreset"])
    assert caught.value.code == "invalid_argument"
    assert "@pypi" in (caught.value.hint or "")
    assert roost.list_workspaces() == []


@pytest.mark.parametrize(
    ("policy", "allow", "publish"),
    [("egress", None, None), ("allowlist", ["@pypi"], None), ("egress+ports", None, None), ("off", None, ["8000"])],
)
def test_the_mock_backend_refuses_every_network_but_loopback_saying_it_is_unisolated(
    roost: Roost, backend: str, policy: str, allow: list[str] | None, publish: list[str] | None
) -> None:
    if backend != "mock":
        pytest.skip("only the mock backend is unisolated")
    with pytest.raises(RoostError) as caught:
        roost.create_workspace("debian:12", network_policy=policy, allow=allow, publish=publish)
    assert caught.value.code == "network_unsupported"
    assert "unisolated" in caught.value.message
    assert "sandbox" in (caught.value.hint or "")
    assert roost.list_workspaces() == []


def test_a_new_workspace_has_loopback_only_and_says_so(workspace: Workspace) -> None:
    network = workspace.info().network
    assert network is not None
    assert (network.policy, network.allow, network.ports, network.enforced) == ("off", (), (), False)
    assert network.detail == "loopback only"
    assert workspace.network.show() == network
    assert json.loads(json.dumps(workspace.info().to_dict()))["network"] == {
        "policy": "off",
        "allow": [],
        "ports": [],
        "enforced": False,
        "detail": "loopback only",
    }


def test_a_record_from_before_network_policies_reads_as_off(roost: Roost, workspace: Workspace) -> None:
    record_file = roost.home / "workspaces" / workspace.id / "workspace.json"
    data = json.loads(record_file.read_text())
    del data["ports"], data["network"]
    record_file.write_text(json.dumps({**data, "network_policy": "off", "schema_version": 2}))
    with Roost(home=roost.home, backend=workspace.info().backend) as later:
        assert later.workspace(workspace.id).network.show().policy == "off"
        assert later.workspace(workspace.id).exec("true").exit_code == 0


def _enforcing(backend: str) -> None:
    if backend == "mock":
        pytest.skip("the mock backend refuses network policies")
    ok, why = network_available()
    if not ok:
        pytest.skip(why)


LOOKUP = "import socket, sys\ntry: socket.gethostbyname(sys.argv[1])\nexcept OSError as e: print(type(e).__name__)"


def test_an_allowlist_is_enforced_from_outside_and_every_refused_lookup_is_logged(roost: Roost, backend: str) -> None:
    _enforcing(backend)
    with roost.create_workspace("debian:12", network_policy="allowlist", allow=["@pypi"]) as ws:
        network = ws.info().network
        assert network is not None and network.enforced and "gateway" in network.detail
        assert "pypi.org:443" in network.allow
        assert ws.exec(["python3", "-c", LOOKUP, "not-allowed.invalid"]).stdout == "gaierror\n"
        denied = ws.network.log(denied=True)
        assert denied and {(d.name, d.protocol, d.reason) for d in denied} == {
            ("not-allowed.invalid", "dns", "name_not_allowed")
        }
        assert ws.network.log(limit=1) == ws.network.log()[-1:]
        assert ws.network.set("off").enforced is False
    assert roost.list_workspaces() == []
