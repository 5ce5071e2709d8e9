from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.subscriptions.periods import boundary, period_end_after


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_month_end_anchor_clamps_and_comes_back():
    anchor = at("2027-01-31 09:30:00")
    ends = [boundary(anchor, "month", 1, n).date().isoformat() for n in range(1, 13)]
    assert ends == [
        "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30", "2027-07-31",
        "2027-08-31", "2027-09-30", "2027-10-31", "2027-11-30", "2027-12-31", "2028-01-31",
    ]  # fmt: skip
    assert boundary(at("2028-01-31"), "month", 1, 1).date().isoformat() == "2028-02-29"  # leap year


@pytest.mark.parametrize(
    ("interval", "count", "expected"),
    [
        ("day", 1, "2027-03-02"),
        ("week", 2, "2027-03-15"),
        ("month", 3, "2027-06-01"),
        ("year", 1, "2028-03-01"),
    ],
)
def test_intervals(interval, count, expected):
    assert boundary(at("2027-03-01"), interval, count, 1).date().isoformat() == expected


@given(
    anchor_day=st.integers(min_value=1, max_value=31),
    interval=st.sampled_from(["day", "week", "month", "year"]),
    count=st.integers(min_value=1, max_value=3),
    offset_days=st.integers(min_value=0, max_value=2000),
)
def test_period_end_after_is_the_first_boundary_after(anchor_day, interval, count, offset_days):
    anchor = at(f"2027-01-{min(anchor_day, 31):02d} 12:00:00")
    after = anchor.replace(hour=13) + (boundary(anchor, "day", 1, offset_days) - anchor)
    end = period_end_after(anchor, interval, count, after)
    assert end > after
    # it is a boundary, and the one before it is not after `after`
    n = next(n for n in range(0, 3000) if boundary(anchor, interval, count, n) == end)
    assert n == 0 or boundary(anchor, interval, count, n - 1) <= after
