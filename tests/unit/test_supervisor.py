"""What the supervisor does when a worker ends."""

from __future__ import annotations

import signal

from service.supervisor import STARTUP_FAILURE, after_exit


def test_a_worker_that_dies_is_replaced_at_once() -> None:
    assert after_exit(-signal.SIGKILL, others_running=False) == "restart"
    assert after_exit(-signal.SIGTERM, others_running=True) == "restart"
    assert after_exit(1, others_running=True) == "restart"


def test_a_worker_that_fails_to_start_is_retried_while_another_serves() -> None:
    assert after_exit(STARTUP_FAILURE, others_running=True) == "retry"


def test_the_service_stops_when_no_worker_can_start() -> None:
    assert after_exit(STARTUP_FAILURE, others_running=False) == "stop"
