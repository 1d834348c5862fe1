"""Pacing: documented budgets, X-RateLimit corrections, Retry-After, no 429s under concurrency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from _api_fake import FakeApi, FakeClock, config

from reconciler.api.pacing import RateLimiter, RateLimitHeaders, parse_rate_limit_headers
from reconciler.api.retry import parse_retry_after

SID = "6618791275130b73714e8d1c"


def limiter(clock: FakeClock, limit: int = 3, window: float = 60.0, **kw: object) -> RateLimiter:
    return RateLimiter(
        "upsert-service-version-set", limit, window, clock=clock, sleep=clock.sleep, **kw
    )  # type: ignore[arg-type]


def test_documented_budget_spaces_requests_over_the_window() -> None:
    clock = FakeClock()
    gate = limiter(clock, limit=3, window=60.0)
    start = clock.now
    for _ in range(3):
        gate.release(gate.acquire())
    assert clock.now == start  # the budget allows a burst of 3
    gate.acquire()
    assert 60.0 <= clock.now - start <= 60.2  # the 4th waits for the first to leave the window


def test_server_remaining_zero_waits_until_reset() -> None:
    clock = FakeClock()
    told: list[str] = []
    gate = limiter(clock, limit=30, window=60.0, on_wait=told.append)
    ticket = gate.acquire()
    gate.release(ticket, RateLimitHeaders(limit=30, remaining=0, reset_at=clock.now + 12.0))
    before = clock.now
    gate.acquire()
    assert 12.0 <= clock.now - before <= 12.2
    assert told and "12s" in told[0] and "upsert-service-version-set" in told[0]


def test_server_remaining_positive_lets_requests_through_even_past_the_local_budget() -> None:
    clock = FakeClock()
    gate = limiter(clock, limit=2, window=60.0)
    ticket = gate.acquire()
    gate.release(ticket, RateLimitHeaders(limit=10, remaining=9, reset_at=clock.now + 30))
    start = clock.now
    for _ in range(9):
        gate.release(gate.acquire())
    assert clock.now == start
    gate.acquire()  # the server's 9 are spent: wait for its reset
    assert clock.now - start >= 30
    assert gate.limit == 10


def test_in_flight_requests_are_subtracted_from_the_reported_remaining() -> None:
    clock = FakeClock()
    gate = limiter(clock, limit=30, window=60.0)
    tickets = [gate.acquire() for _ in range(4)]  # four in flight
    # The first answer says 2 left, but three more requests are still in flight.
    gate.release(tickets[0], RateLimitHeaders(limit=30, remaining=2, reset_at=clock.now + 5))
    start = clock.now
    gate.acquire()
    assert clock.now - start >= 5


def test_answers_overtaken_by_later_ones_do_not_inflate_the_budget() -> None:
    """A slow answer reports a Remaining from before requests answered meanwhile."""
    clock = FakeClock()
    gate = limiter(clock, limit=30, window=60.0)
    slow = gate.acquire()
    fast = [gate.acquire() for _ in range(3)]
    for n, ticket in enumerate(fast):  # served after `slow`, answered before it
        gate.release(
            ticket, RateLimitHeaders(limit=30, remaining=2 - n - 1, reset_at=clock.now + 5)
        )
    # `slow` was counted first: its Remaining (3) predates the three others.
    gate.release(slow, RateLimitHeaders(limit=30, remaining=3, reset_at=clock.now + 5))
    start = clock.now
    gate.acquire()
    assert clock.now - start >= 5


def test_window_length_is_learned_from_reset() -> None:
    clock = FakeClock()
    gate = limiter(clock, limit=2, window=60.0)
    ticket = gate.acquire()
    gate.release(ticket, RateLimitHeaders(limit=2, remaining=1, reset_at=clock.now + 1.5))
    assert gate.window_seconds == 1.5
    ticket = gate.acquire()
    gate.release(ticket, RateLimitHeaders(limit=2, remaining=0, reset_at=clock.now + 1.5))
    start = clock.now
    gate.acquire()  # after the server's reset, the 1.5 s log (not 60 s) applies
    assert clock.now - start < 2.0


def test_retry_after_closes_the_gate_for_everyone() -> None:
    clock = FakeClock()
    gate = limiter(clock, limit=30)
    ticket = gate.acquire()
    gate.release(ticket, None, retry_after=7.0)
    start = clock.now
    gate.acquire()
    assert clock.now - start >= 7.0


def test_header_parsing() -> None:
    parsed = parse_rate_limit_headers(
        {
            "x-ratelimit-limit": "30",
            "x-ratelimit-remaining": "4",
            "x-ratelimit-reset": "1700000000.5",
        }
    )
    assert parsed == RateLimitHeaders(limit=30, remaining=4, reset_at=1700000000.5)
    assert parse_rate_limit_headers({}) is None
    assert parse_rate_limit_headers({"x-ratelimit-remaining": "lots"}) is None
    assert parse_retry_after("12", 0.0) == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert parse_retry_after("soon", 0.0) is None
    assert parse_retry_after("-3", 0.0) == 0.0


def test_burst_of_upserts_from_threads_provokes_no_429() -> None:
    """60 upserts from 8 threads against a 30-per-1s window: paced, never rate limited."""
    api = FakeApi(clock=time.time)
    api.limits["upsert-service-version-set"] = (30, 1.0)
    client = api.client(config=config())
    client.list_agents()  # sign in first
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(client.upsert_version_set, SID, f"vs{i}", {}, service="Meet")
            for i in range(60)
        ]
        for future in futures:
            future.result()
    elapsed = time.monotonic() - started
    assert api.rate_limited == 0
    assert client.rate_limited_count == 0
    assert client.request_counts["upsert-service-version-set"] == 60
    assert elapsed < 5.0


def test_limiter_is_thread_safe_under_contention() -> None:
    clock = FakeClock()
    gate = limiter(clock, limit=1000, window=60.0)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(100):
            gate.release(gate.acquire())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now == FakeClock().now  # 800 < 1000: nobody had to wait


def test_threads_waiting_for_the_same_reset_are_announced_once() -> None:
    clock = FakeClock()
    told: list[str] = []
    # Every waiter parks at the barrier; the last one to arrive moves time past the reset.
    barrier = threading.Barrier(3, action=lambda: setattr(clock, "now", clock.now + 10.1))
    gate = RateLimiter(
        "update-service",
        20,
        60.0,
        clock=clock,
        sleep=lambda _s: barrier.wait(),
        on_wait=told.append,
    )
    ticket = gate.acquire()
    gate.release(ticket, RateLimitHeaders(limit=20, remaining=0, reset_at=clock.now + 10))
    threads = [threading.Thread(target=gate.acquire) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert told == ["waiting 10s for the rate limit on update-service"]
