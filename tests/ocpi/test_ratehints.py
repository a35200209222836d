"""What a partner says or shows of its rate limit, for `plan` (pure)."""

from __future__ import annotations

import pytest

from producer.ocpi.http.ratehints import RateHint, advertised, binding, observed

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "per_s"),
    [
        ({"RateLimit-Policy": "10;w=1"}, 10.0),
        ({"RateLimit-Policy": '"burst";q=100;w=60, "sustained";q=5;w=1'}, 100 / 60),
        ({"ratelimit-limit": "20", "ratelimit-reset": "2"}, 10.0),
        ({"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "1"}, 5.0),
        ({"X-RateLimit-Limit": "100, 100;w=60"}, 100 / 60),
        ({"X-RateLimit-Limit": "7"}, 7.0),  # no window: per second
        ({"X-RateLimit-Limit": "600", "X-RateLimit-Reset": str(int(NOW) + 60)}, 10.0),  # epoch
        ({"X-RateLimit-Limit": "10", "RateLimit-Policy": "4;w=1"}, 4.0),  # the lowest
    ],
)
def test_advertised_limits_in_their_usual_forms(headers: dict[str, str], per_s: float) -> None:
    hint = advertised(headers, NOW)
    assert hint is not None
    assert hint.source == "advertised"
    assert hint.per_s == pytest.approx(per_s)
    assert hint.detail  # what said so, for the operator


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Total-Count": "10"}, {"X-RateLimit-Limit": "many"}, {"RateLimit-Policy": "w=1"}],
)
def test_no_limit_advertised(headers: dict[str, str]) -> None:
    assert advertised(headers, NOW) is None


def test_a_429_shows_the_rate_that_was_too_much() -> None:
    answers = [(0.1, 200), (0.3, 200), (0.5, 200), (0.9, 429), (1.0, 200)]
    hint = observed(answers)
    assert hint == RateHint(3.0, "observed", "HTTP 429 after 3 requests in a second")
    assert observed([(0.1, 200)]) is None


def test_the_lowest_limit_holds_the_pull() -> None:
    partner = RateHint(10.0, "advertised", "RateLimit-Policy: 10;w=1")
    assert binding([partner, None], None) == partner
    assert binding([partner], 2.0) == RateHint(2.0, "configured", "--rate-limit 2")
    assert binding([partner], 50.0) == partner
    assert binding([None], None) is None
