"""The shared rate budget and call counting, with a fake clock (no real waiting)."""

from __future__ import annotations

from reconciler.aws.clients import CallStats, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_burst_passes_then_calls_are_paced_at_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(rate=20, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
    assert clock.now == 0.0, "the burst costs no waiting"
    for _ in range(20):
        limiter.acquire()
    assert abs(clock.now - 1.0) < 1e-6, "20 more calls at 20/s take one second"


def test_zero_rate_means_no_budget():
    clock = FakeClock()
    limiter = RateLimiter(rate=0, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    assert clock.now == 0.0


def test_writes_are_counted_apart_from_reads():
    stats = CallStats()
    for op in ("DescribeJobs", "ListJobs", "GetCallerIdentity", "SubmitJob", "TagResource"):
        stats.record("batch", op)
    assert stats.total == 5 and stats.writes == 2
