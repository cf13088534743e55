"""The agent's request threads: kept for the next request, a new one only when all are busy."""

from __future__ import annotations

import threading

from roost.agent.system.workers import Workers

WAIT = 10.0


def _run_and_report(workers: Workers, name: str) -> threading.Thread:
    ran: list[threading.Thread] = []
    done = threading.Event()

    def job() -> None:
        ran.append(threading.current_thread())
        done.set()

    workers.submit(job, name)
    assert done.wait(WAIT)
    return ran[0]


def _wait_idle(workers: Workers, count: int) -> None:
    for _ in range(1000):
        if workers.idle() == count:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"expected {count} idle workers, have {workers.idle()}")


def test_a_request_after_another_runs_on_the_thread_the_first_left_idle() -> None:
    workers = Workers()
    first = _run_and_report(workers, "op-exec-1")
    _wait_idle(workers, 1)

    second = _run_and_report(workers, "op-exec-2")

    assert second is first
    assert second.name == "op-exec-2"


def test_requests_while_every_thread_is_busy_each_get_a_thread_of_their_own() -> None:
    workers = Workers()
    release = threading.Event()
    started = threading.Barrier(4, timeout=WAIT)  # three jobs and this test

    def blocker() -> None:
        started.wait()
        release.wait(WAIT)

    for n in range(3):
        workers.submit(blocker, f"op-follow-{n}")
    started.wait()  # all three run at once: none waited for another to finish
    release.set()
    _wait_idle(workers, 3)


def test_an_idle_thread_ends_after_the_idle_time_and_the_next_request_still_runs() -> None:
    workers = Workers(idle_seconds=0.05)
    first = _run_and_report(workers, "op-ping-1")
    first.join(WAIT)
    assert not first.is_alive()
    assert workers.idle() == 0

    second = _run_and_report(workers, "op-ping-2")

    assert second is not first


def test_a_job_that_raises_leaves_its_thread_serving() -> None:
    workers = Workers()
    failed = threading.Event()

    def boom() -> None:
        failed.set()
        raise RuntimeError("a bug in an op")

    workers.submit(boom, "op-bad-1")
    assert failed.wait(WAIT)
    _wait_idle(workers, 1)
