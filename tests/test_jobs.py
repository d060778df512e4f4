"""pointbridge.kit.jobs: polling an asynchronous platform job, on a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from pointbridge import PermanentError, RateLimited, TransientError
from pointbridge.kit.jobs import JobLost, wait_for_job


class Clock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def polls(answers: Iterable[str | Exception]) -> Callable[[], str]:
    """A poll answering each of ``answers`` in turn (an exception is raised)."""
    pending = iter(answers)

    def poll() -> str:
        answer = next(pending)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return poll


def wait(clock: Clock, answers: Iterable[str | Exception], **options: float) -> str:
    return wait_for_job(
        polls(answers),
        lambda status: status != "running",
        what="Import 7",
        clock=clock,
        sleep=clock.sleep,
        **options,  # type: ignore[arg-type]
    )


def test_polls_with_growing_waits_until_the_job_is_done() -> None:
    clock = Clock()
    assert wait(clock, ["running", "running", "running", "done"], delays=(1, 2)) == "done"
    assert clock.sleeps == [1, 2, 2, 2]


def test_a_failed_poll_is_polled_again_and_a_429_waits_as_asked() -> None:
    clock = Clock()
    answers = [TransientError("503"), RateLimited("429", retry_after=5), "done"]
    assert wait(clock, answers, delays=(1,)) == "done"
    assert clock.sleeps == [1, 1, 5]


def test_a_job_still_running_after_the_budget_is_sent_again() -> None:
    clock = Clock()
    with pytest.raises(TransientError, match=r"Import 7 has not finished within 10 s") as caught:
        wait(clock, ["running"] * 100, delays=(3,), budget=10)
    assert clock.sleeps == [3, 3, 3]  # a fourth wait would end past the budget
    assert not isinstance(caught.value, JobLost)


def test_the_last_failed_poll_is_named_when_time_runs_out() -> None:
    clock = Clock()
    with pytest.raises(TransientError, match=r"\(last poll: HTTP 503\)"):
        wait(clock, [TransientError("HTTP 503")] * 10, delays=(4,), budget=10)


@pytest.mark.parametrize("error", [JobLost("404"), PermanentError("400")])
def test_a_lost_job_or_a_refusal_ends_the_wait_at_once(error: Exception) -> None:
    clock = Clock()
    with pytest.raises(type(error)):
        wait(clock, ["running", error, "done"], delays=(1,))
    assert clock.sleeps == [1, 1]
