"""`roost secret ...`, `workspace create --secret`, `workspace secret ...` and `--secret-env/--secret-file` as a
user meets them: values go in through stdin, a file or a variable and never come back out."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest
from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e


@pytest.fixture
def value() -> str:
    return "cli-" + secrets.token_hex(10)


def test_set_from_stdin_file_and_variable_then_list_shows_no_value(roost: RoostCli, value: str, tmp_path: Path) -> None:
    roost("secret", "set", "FROM_STDIN", input=value + "\n", check_rc=0)
    (tmp_path / "v").write_text(value)
    roost("secret", "set", "FROM_FILE", "--from-file", str(tmp_path / "v"), "--mode", "file", check_rc=0)
    roost.env["MY_VALUE"] = value
    done = roost("secret", "set", "FROM_VAR", "--from-env", "MY_VALUE", check_rc=0)
    assert value not in done.stdout + done.stderr
    listed = roost.json("secret", "list")["secrets"]
    assert [entry["name"] for entry in listed] == ["FROM_FILE", "FROM_STDIN", "FROM_VAR"]
    assert listed[0]["modes"] == ["file"] and listed[1]["modes"] == ["env", "file"]
    text = roost("secret", "list", check_rc=0).stdout
    assert value not in text and "FROM_VAR" in text
    assert value.encode() not in b"".join(p.read_bytes() for p in roost.home.rglob("*") if p.is_file())
    roost("secret", "delete", "FROM_VAR", check_rc=0)
    assert [entry["name"] for entry in roost.json("secret", "list")["secrets"]] == ["FROM_FILE", "FROM_STDIN"]


def test_exec_shell_and_service_get_attached_secrets_and_every_output_redacts(roost: RoostCli, value: str) -> None:
    roost("secret", "set", "TOKEN", input=value, check_rc=0)
    ws = roost.create("--secret", "TOKEN")
    assert roost.json("workspace", "status", ws)["secrets"] == {"TOKEN": ["env", "file"]}
    assert "secrets  TOKEN (env,file)" in roost("workspace", "status", ws, check_rc=0).stdout
    ran = roost(
        "workspace", "exec", ws, "--secret-env", "TOKEN=API", "-c", 'echo "$API"; echo -n "$API" | base64', check_rc=0
    )
    assert ran.stdout.splitlines() == ["[redacted:TOKEN]", "[redacted:TOKEN]"]
    filed = roost("workspace", "exec", ws, "--secret-file", "TOKEN", "-c", 'cat "$ROOST_SECRET_FILE_TOKEN"', check_rc=0)
    assert filed.stdout == "[redacted:TOKEN]"
    logs = roost("workspace", "logs", ws, "--exec", "1", check_rc=0)
    assert value not in logs.stdout and "[redacted:TOKEN]" in logs.stdout
    shell = roost("workspace", "shell", "open", ws, "--secret-env", "TOKEN", "--id-only", check_rc=0).stdout.strip()
    roost("workspace", "shell", "write", ws, shell, "--input", 'echo "sh=$TOKEN"', check_rc=0)
    read = roost("workspace", "shell", "read", ws, shell, "--wait-for-idle-ms", "300", check_rc=0)
    assert "sh=[redacted:TOKEN]" in read.stdout and value not in read.stdout
    roost(
        "workspace",
        "service",
        "start",
        ws,
        "web",
        "--secret-env",
        "TOKEN",
        "-c",
        'echo "svc=$TOKEN"; exec sleep 30',
        check_rc=0,
    )
    service_logs = roost("workspace", "service", "logs", ws, "web", check_rc=0).stdout
    assert value not in service_logs
    assert value.encode() not in b"".join(
        p.read_bytes() for p in roost.home.rglob("*") if p.is_file() and not p.is_symlink()
    )
    roost("workspace", "delete", ws, check_rc=0)


def test_workspace_secret_add_list_and_remove(roost: RoostCli, value: str) -> None:
    roost("secret", "set", "TOKEN", input=value, check_rc=0)
    ws = roost.create()
    assert roost.json("workspace", "secret", "list", ws)["secrets"] == []
    added = roost.json("workspace", "secret", "add", ws, "TOKEN:env")["secrets"]
    assert added == [{"name": "TOKEN", "modes": ["env"], "placeholder": None}]
    roost("workspace", "exec", ws, "--secret-env", "TOKEN", "--", "true", check_rc=0)
    roost.error(
        roost("workspace", "exec", ws, "--secret-file", "TOKEN", "--json", "--", "true"), 2, "secret_mode_unsupported"
    )
    assert roost.json("workspace", "secret", "remove", ws, "TOKEN")["secrets"] == []
    error = roost.error(
        roost("workspace", "exec", ws, "--secret-env", "TOKEN", "--json", "--", "true"), 3, "secret_not_found"
    )
    assert f"roost workspace secret add {ws} TOKEN" in error["hint"]
    roost("workspace", "delete", ws, check_rc=0)


def test_bad_secret_input_fails_before_anything_starts(roost: RoostCli, value: str, tmp_path: Path) -> None:
    error = roost.error(roost("workspace", "create", "debian:12", "--secret", "NOPE", "--json"), 3, "secret_not_found")
    assert "roost secret set NOPE" in error["hint"]
    assert roost.workspace_dirs() == []
    roost.error(roost("secret", "set", "1BAD", "--json", input=value), 2, "invalid_argument")
    roost.error(
        roost("secret", "set", "T", "--from-file", str(tmp_path / "missing"), "--json"), 3, "host_file_not_found"
    )
    roost.error(roost("secret", "set", "T", "--mode", "proxy", "--json", input=value), 2, "invalid_argument")
    roost("secret", "set", "WEB", "--mode", "proxy", "--host", "api.example.com", input=value, check_rc=0)
    proxy = roost("workspace", "create", "debian:12", "--secret", "WEB:proxy", "--json")
    roost.error(proxy, 2, "secret_mode_unsupported")
    assert roost.workspace_dirs() == [] and value not in proxy.stderr
    assert json.loads(roost("secret", "list", "--json", check_rc=0).stdout)["secrets"][0]["hosts"] == [
        "api.example.com"
    ]
    assert base64.b64encode(value.encode()).decode() not in proxy.stderr
