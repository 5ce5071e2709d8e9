"""Billing periods, computed from the subscription's anchor, never from the previous end:
an anchor on Jan 31 renews Feb 28 (29), Mar 31, Apr 30. Periods are [start, end)."""

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

from billing.catalog.models import RecurringInterval


def boundary(anchor: datetime, interval: str, count: int, n: int) -> datetime:
    """The end of the n-th period after ``anchor`` (n=0 is the anchor itself)."""
    steps = count * n
    if interval == RecurringInterval.DAY:
        return anchor + timedelta(days=steps)
    if interval == RecurringInterval.WEEK:
        return anchor + timedelta(weeks=steps)
    if interval == RecurringInterval.MONTH:
        return anchor + relativedelta(months=steps)  # clamps to the month's last day
    if interval == RecurringInterval.YEAR:
        return anchor + relativedelta(years=steps)
    raise ValueError(f"unknown interval {interval!r}")


def period_end_after(anchor: datetime, interval: str, count: int, after: datetime) -> datetime:
    """The first period boundary strictly after ``after``."""
    if after < anchor:
        return anchor
    approx_days = {"day": 1, "week": 7, "month": 28, "year": 365}[interval] * count
    n = max(1, int((after - anchor).days // approx_days))
    while n > 1 and boundary(anchor, interval, count, n - 1) > after:
        n -= 1
    while boundary(anchor, interval, count, n) <= after:
        n += 1
    return boundary(anchor, interval, count, n)


def months_per_period(interval: str, count: int) -> float:
    return {"day": count / 30.4375, "week": count * 7 / 30.4375, "month": count, "year": 12 * count}[interval]
