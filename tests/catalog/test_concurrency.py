"""Checkouts racing for the last use of a discount: the discount row lock lets one through."""

import threading

import pytest
from django.db import connection, transaction

from billing.catalog import services
from billing.catalog.models import DiscountRedemption
from core.errors import InvalidInput


def race(n: int, work) -> list[str]:
    """Run ``work(i)`` in ``n`` threads released at the same moment, each in its own
    transaction and database connection; returns "ok" or the error code of each."""
    barrier = threading.Barrier(n)
    outcomes: list[str] = [""] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                work(i)
            outcomes[i] = "ok"
        except InvalidInput as exc:
            outcomes[i] = exc.code
        except Exception as exc:  # pragma: no cover - reported by the assertion
            outcomes[i] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_checkouts_race_for_the_last_redemption(make_product, make_discount, make_checkout):
    product = make_product()
    discount = make_discount(code="LAST-ONE", max_redemptions=1)
    checkouts = [make_checkout(product), make_checkout(product)]

    outcomes = race(
        2,
        lambda i: services.discount_reserve(
            discount=discount, checkout=checkouts[i], customer_email=f"buyer{i}@example.com"
        ),
    )

    assert sorted(outcomes) == ["discount_exhausted", "ok"]
    assert DiscountRedemption.objects.filter(discount=discount).count() == 1


@pytest.mark.django_db(transaction=True)
def test_many_checkouts_of_one_customer_race_for_a_per_customer_limit(
    make_product, make_discount, make_checkout
):
    product = make_product()
    discount = make_discount(code="ONE-EACH", max_redemptions=3, max_redemptions_per_customer=1)
    checkouts = [make_checkout(product) for _ in range(6)]

    outcomes = race(
        6,
        lambda i: services.discount_reserve(
            discount=discount,
            checkout=checkouts[i],
            customer_email="SAME@example.com" if i % 2 else "same@example.com",
        ),
    )

    assert sorted(outcomes) == ["discount_exhausted"] * 5 + ["ok"]
    assert DiscountRedemption.objects.filter(discount=discount).count() == 1
