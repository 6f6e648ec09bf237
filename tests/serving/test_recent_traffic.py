"""RecentTraffic: the last minute's requests, errors and latency percentiles of an endpoint and its variants."""

from __future__ import annotations

from forgeline.serving.recent_traffic import WINDOW_SECONDS, RecentTraffic, bucket_of, bucket_seconds


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_errors_and_percentiles_over_the_window_by_variant() -> None:
    clock = Clock()
    traffic = RecentTraffic(clock)
    for n in range(100):  # 100 requests over the first 10 s: 98 take 2 ms, 2 take 300 ms; A gets the slow ones
        clock.now = 1000.0 + n / 10
        traffic.observe("risk", "A" if n % 2 else "B", 200, 0.3 if n in (11, 13) else 0.002)
    traffic.observe("risk", "", 404, 0.0001)  # refused before a variant was chosen
    traffic.observe("other", "A", 200, 5.0)
    clock.now = 1010.0

    figures = traffic.summary("risk", ["A", "B", "C"])

    assert figures["requests"] == 101 and figures["errors"] == 1
    assert figures["requests_per_second"] == 10.1  # over the 10 s the server has been up
    assert 1.8 <= figures["p50_ms"] <= 2.2 and 250 <= figures["p99_ms"] <= 330
    assert figures["variants"]["A"]["requests"] == 50 and figures["variants"]["A"]["p99_ms"] >= 250
    assert figures["variants"]["B"]["p99_ms"] <= 2.2
    assert figures["variants"]["C"] == {"window_seconds": WINDOW_SECONDS, "requests": 0, "errors": 0,
                                        "requests_per_second": 0.0, "p50_ms": None, "p99_ms": None}
    assert "" not in figures["variants"]


def test_requests_older_than_the_window_drop_out() -> None:
    clock = Clock()
    traffic = RecentTraffic(clock)
    traffic.observe("risk", "A", 500, 0.01)
    clock.now += 30
    traffic.observe("risk", "A", 200, 0.01)
    clock.now += 40  # the first request is 70 s old, the second 40 s

    figures = traffic.summary("risk")

    assert (figures["requests"], figures["errors"]) == (1, 0)
    assert figures["requests_per_second"] == round(1 / WINDOW_SECONDS, 3)
    clock.now += WINDOW_SECONDS
    assert traffic.summary("risk")["requests"] == 0 and traffic.summary("risk")["p50_ms"] is None


def test_a_bucket_holds_durations_within_a_tenth_of_its_middle() -> None:
    for seconds in (0.00007, 0.0013, 0.02, 0.7, 12.0):
        assert abs(bucket_seconds(bucket_of(seconds)) - seconds) / seconds < 0.1
