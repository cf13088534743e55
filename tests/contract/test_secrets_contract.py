"""Secrets, as every backend must keep them, through the SDK only: given only to the processes that ask,
redacted on every output channel, and nowhere on disk after a whole session.

Each test makes its own secret in its own home; values are random per test, so a byte search cannot
be fooled by another test's leftovers.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from pathlib import Path

import pytest

from helpers import wait_until
from roost import Roost, RoostError, Workspace
from roost.client import Readiness

pytestmark = pytest.mark.contract

FAST = Readiness(interval_ms=10, timeout_s=10.0)


@pytest.fixture
def value() -> bytes:
    return b"tok-" + secrets.token_hex(12).encode()


@pytest.fixture
def attached(roost: Roost, value: bytes) -> Workspace:
    """A workspace with secret TOKEN attached in env and file modes (the `roost` fixture deletes it)."""
    roost.secrets.set("TOKEN", value)
    return roost.create_workspace("debian:12", secrets=["TOKEN"])


def _found_under(root: Path, needles: list[bytes]) -> list[str]:
    """Files under `root` (links not followed) that hold any of `needles`."""
    hits = []
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(needle in data for needle in needles):
                hits.append(str(path))
    return hits


def _forms(value: bytes) -> list[bytes]:
    return [value, base64.b64encode(value), base64.b64encode(value).rstrip(b"=")]


def test_env_mode_reaches_only_the_process_that_asks_and_its_output_is_redacted(
    attached: Workspace, value: bytes
) -> None:
    asked = attached.exec('echo "[$MY_TOKEN]"; printf %s "$MY_TOKEN" | base64', secret_env=["TOKEN=MY_TOKEN"])
    assert asked.exit_code == 0, asked.stderr
    assert asked.stdout.splitlines()[0] == "[[redacted:TOKEN]]"
    assert value.decode() not in asked.stdout and base64.b64encode(value).decode() not in asked.stdout
    assert "[redacted:TOKEN]" in asked.stdout.splitlines()[1]
    digest = attached.exec('printf %s "$MY_TOKEN" | sha256sum', secret_env=["TOKEN=MY_TOKEN"])
    assert digest.stdout.split()[0] == hashlib.sha256(value).hexdigest()  # the real value, not what the host shows
    other = attached.exec('echo "${MY_TOKEN:-unset} ${TOKEN:-unset}"')
    assert other.stdout.strip() == "unset unset"


def test_neither_pid_1_nor_the_agent_holds_an_env_secret(attached: Workspace) -> None:
    script = (
        "for pid in 1 $PPID; do "
        'if tr "\\0" "\\n" < /proc/$pid/environ 2>/dev/null | grep -qF "$TOKEN"; then echo "leak in $pid"; fi; done; '
        "echo checked"
    )
    result = attached.exec(script, secret_env=["TOKEN"])
    assert result.stdout.strip() == "checked", result.stdout


def test_file_mode_is_an_owner_only_file_outside_the_workspace_removed_after(attached: Workspace) -> None:
    script = 'f="$ROOST_SECRET_FILE_TOKEN"; echo "$f"; stat -c %a "$f"; cat "$f"'
    result = attached.exec(script, secret_files=["TOKEN"])
    path, mode, shown = result.stdout.splitlines()
    assert not path.startswith("/workspace") and mode == "400" and shown == "[redacted:TOKEN]"
    gone = attached.exec(f'test -e "{path}" && echo there || echo gone')
    assert gone.stdout.strip() == "gone"


def test_file_mode_at_a_named_tmpfs_path_and_never_in_the_workspace(attached: Workspace) -> None:
    result = attached.exec(
        'echo "$ROOST_SECRET_FILE_TOKEN"; cat /dev/shm/my-token', secret_files=["TOKEN=/dev/shm/my-token"]
    )
    assert result.stdout == "/dev/shm/my-token\n[redacted:TOKEN]"
    assert attached.exec("test -e /dev/shm/my-token || echo gone").stdout == "gone\n"
    with pytest.raises(RoostError) as inside:
        attached.exec("touch ran", secret_files=["TOKEN=/workspace/token"])
    assert inside.value.code == "invalid_argument"
    assert attached.exec("test -e ran").exit_code == 1


def test_a_value_split_across_stream_chunks_is_still_redacted(attached: Workspace, value: bytes) -> None:
    half = len(value) // 2
    script = f'printf %s "${{TOKEN:0:{half}}}"; sleep 0.3; printf "%s\\n" "${{TOKEN:{half}}}"'
    chunks: list[bytes] = []
    result = attached.exec(script, secret_env=["TOKEN"], on_output=lambda _channel, data: chunks.append(data))
    streamed = b"".join(chunks)
    assert streamed == b"[redacted:TOKEN]\n" and result.stdout == "[redacted:TOKEN]\n"
    assert attached.exec_output(result.exec_id or 0).data == "[redacted:TOKEN]\n"


def test_shell_reads_and_service_logs_redact_and_a_service_keeps_its_secret_across_restarts(
    attached: Workspace, value: bytes
) -> None:
    shell = attached.shells.open(secret_env=["TOKEN"])
    attached.shells.write(shell.id, 'echo "shell:$TOKEN"')
    seen = wait_until(
        lambda: (out := attached.shells.read(shell.id, wait_for_idle_ms=100).data) and "shell:[redacted" in out and out,
        what="the shell's echo",
    )
    assert value.decode() not in seen
    attached.shells.close(shell.id)
    script = 'echo "svc:$TOKEN"; cat "$ROOST_SECRET_FILE_TOKEN"; echo; sleep 0.2; exit 1'
    attached.services.start("leaky", script, secret_env=["TOKEN"], secret_files=["TOKEN"], restart="always", ready=FAST)
    wait_until(lambda: attached.services.status("leaky").restarts >= 1, timeout=15, what="a restart")
    logs = wait_until(
        lambda: (text := attached.services.logs("leaky")).count("\n[redacted:TOKEN]") >= 2 and text, timeout=15
    )
    assert value.decode() not in logs and logs.count("svc:[redacted:TOKEN]") >= 2
    assert logs.count("\n[redacted:TOKEN]") >= 2  # the file was still there for the restart
    attached.services.stop("leaky", timeout=1)


def test_file_reads_diffs_and_exported_patches_redact(attached: Workspace, value: bytes, tmp_path: Path) -> None:
    attached.exec('printf "key=%s\\n" "$TOKEN" > config.env', secret_env=["TOKEN"])
    read = attached.files.read("/workspace/config.env")
    assert read.data == b"key=[redacted:TOKEN]\n" and read.length == len(b"key=\n") + len(value)
    assert "+key=[redacted:TOKEN]" in attached.diff().patch
    attached.export("/workspace", tmp_path / "out.patch", format="patch")
    assert b"[redacted:TOKEN]" in (tmp_path / "out.patch").read_bytes()
    assert value not in (tmp_path / "out.patch").read_bytes()


def test_a_whole_session_leaves_no_value_on_disk(roost: Roost, roost_home: Path, value: bytes, tmp_path: Path) -> None:
    roost.secrets.set("TOKEN", value)
    ws = roost.create_workspace("debian:12", secrets=["TOKEN"])
    ws.exec('echo "$TOKEN"; echo "$TOKEN" | base64 >&2', secret_env=["TOKEN"])
    ws.exec('cat "$ROOST_SECRET_FILE_TOKEN"', secret_files=["TOKEN"])
    shell = ws.shells.open(secret_env=["TOKEN"])
    ws.shells.write(shell.id, 'echo "$TOKEN"; touch shell-done')
    wait_until(lambda: ws.exec("test -e shell-done").exit_code == 0, timeout=10, what="the shell's command")
    ws.shells.read(shell.id)
    ws.services.start("srv", 'echo "$TOKEN"; exec sleep 30', secret_env=["TOKEN"], ready=FAST)
    time.sleep(0.2)
    ws.services.logs("srv")
    ws.exec("echo work > notes.txt")
    ws.snapshots.create("checkpoint")
    ws.export("/workspace", tmp_path / "tree")
    ws.export("/workspace", tmp_path / "changes.patch", format="patch")
    ws.stop()
    ws.start()
    assert ws.exec("echo ${TOKEN:-unset}").stdout.strip() == "unset"
    found_before_delete = _found_under(roost_home, _forms(value)) + _found_under(tmp_path, _forms(value))
    ws.delete()
    assert found_before_delete == []
    assert _found_under(roost_home, _forms(value)) == []


def test_bad_secret_input_is_refused_before_anything_starts(roost: Roost, value: bytes) -> None:
    with pytest.raises(RoostError) as unknown:
        roost.create_workspace("debian:12", secrets=["MISSING"])
    assert unknown.value.code == "secret_not_found"
    roost.secrets.set("TOKEN", value, modes=["env"])
    with pytest.raises(RoostError) as wrong_mode:
        roost.create_workspace("debian:12", secrets=["TOKEN:file"])
    assert wrong_mode.value.code == "secret_mode_unsupported"
    roost.secrets.set("HTTP_KEY", value, modes=["proxy"], hosts=["api.example.com"])
    with pytest.raises(RoostError) as proxy:
        roost.create_workspace("debian:12", secrets=["HTTP_KEY:proxy"])
    assert proxy.value.code == "secret_mode_unsupported" and proxy.value.hint
    assert roost.list_workspaces() == []
    for error in (unknown.value, wrong_mode.value, proxy.value):
        assert value.decode() not in f"{error} {error.hint}"


def test_a_process_may_ask_only_for_attached_secrets_in_their_modes(roost: Roost, value: bytes) -> None:
    roost.secrets.set("TOKEN", value, modes=["env"])
    roost.secrets.set("OTHER", b"other-value")
    ws = roost.create_workspace("debian:12", secrets=["TOKEN"])
    try:
        for kwargs, code in (
            ({"secret_env": ["OTHER"]}, "secret_not_found"),
            ({"secret_files": ["TOKEN"]}, "secret_mode_unsupported"),
            ({"secret_env": ["TOKEN=1BAD"]}, "invalid_argument"),
        ):
            with pytest.raises(RoostError) as caught:
                ws.exec("touch ran", **kwargs)  # type: ignore[arg-type]
            assert caught.value.code == code
        assert ws.exec("test -e ran").exit_code == 1
        ws.secrets.add("OTHER")
        assert ws.exec('echo "$OTHER"', secret_env=["OTHER"]).stdout == "[redacted:OTHER]\n"
        assert [s.name for s in ws.secrets.remove("OTHER")] == ["TOKEN"]
        with pytest.raises(RoostError) as detached:
            ws.exec("true", secret_env=["OTHER"])
        assert detached.value.code == "secret_not_found"
    finally:
        ws.delete(force=True)
