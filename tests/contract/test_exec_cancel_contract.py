"""Cancelling an exec: its whole process group is killed at once, the call raises `cancelled`, and the
history keeps the entry; the event is the caller's, only read."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from helpers import pids_with_env, wait_until
from roost import Workspace
from roost.errors import RoostError

PROMPTLY = 3.0


def test_setting_cancel_kills_the_exec_and_everything_it_started(workspace: Workspace) -> None:
    mark = uuid.uuid4().hex
    cancel = threading.Event()
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(workspace.exec("sleep 30 & sleep 30; wait", env={"CANCEL_MARK": mark}, cancel=cancel))
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    wait_until(lambda: len(pids_with_env("CANCEL_MARK", mark)) >= 2, timeout=10.0, what="both sleeps to run")
    began = time.monotonic()
    cancel.set()
    runner.join(PROMPTLY)
    assert not runner.is_alive(), "the exec went on after it was cancelled"
    assert time.monotonic() - began < PROMPTLY
    (error,) = outcome
    assert isinstance(error, RoostError) and error.code == "cancelled"
    wait_until(lambda: not pids_with_env("CANCEL_MARK", mark), timeout=PROMPTLY, what="the process group to be gone")
    assert workspace.logs()[-1].error == "cancelled"


def test_an_event_never_set_changes_nothing_and_roost_never_sets_it(workspace: Workspace) -> None:
    cancel = threading.Event()
    first = workspace.exec("echo one", cancel=cancel)
    second = workspace.exec("echo two", cancel=cancel)
    assert (first.stdout, second.stdout, cancel.is_set()) == ("one\n", "two\n", False)


def test_an_event_set_before_the_call_cancels_it_at_once(workspace: Workspace) -> None:
    cancel = threading.Event()
    cancel.set()
    began = time.monotonic()
    with pytest.raises(RoostError) as caught:
        workspace.exec("sleep 30", cancel=cancel)
    assert caught.value.code == "cancelled" and time.monotonic() - began < PROMPTLY
