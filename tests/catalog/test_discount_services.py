from datetime import timedelta

import pytest
import time_machine

from billing.catalog import services
from billing.catalog.models import Discount, DiscountRedemption
from core import clock
from core.errors import Conflict, InvalidInput
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def error_of(call, **kwargs) -> tuple[str | None, str]:
    with pytest.raises((InvalidInput, Conflict)) as caught:
        call(**kwargs)
    return caught.value.field, caught.value.code


def test_create_percentage_and_fixed(org, product, operator):
    later = clock.now() + timedelta(days=30)
    percentage = services.discount_create(
        organization=org,
        name="Launch",
        type="percentage",
        basis_points=2500,
        duration="repeating",
        duration_in_months=3,
        code="LAUNCH-25",
        ends_at=later,
        max_redemptions=100,
        max_redemptions_per_customer=1,
        product_ids=[product.pk, str(product.pk)],
        metadata={"campaign": "spring"},
        actor=operator,
    )
    fixed = services.discount_create(
        organization=org, name="Five off", type="fixed", amounts={"USD": 500, "eur": 450}
    )

    percentage.refresh_from_db()
    assert (percentage.code, percentage.basis_points, percentage.duration_in_months) == ("LAUNCH-25", 2500, 3)
    assert list(percentage.products.all()) == [product]
    assert fixed.amounts == {"usd": 500, "eur": 450}
    assert (fixed.code, fixed.duration, fixed.basis_points) == (None, "once", None)
    assert AuditEntry.objects.get().action == "discount.create"


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"name": ""}, "name", "required"),
        ({"type": "bogo"}, "type", "invalid_choice"),
        ({"basis_points": None}, "basis_points", "required"),
        ({"basis_points": 0}, "basis_points", "out_of_range"),
        ({"basis_points": 10_001}, "basis_points", "out_of_range"),
        ({"amounts": {"usd": 500}}, "amounts", "not_allowed"),
        ({"type": "fixed", "basis_points": None}, "amounts", "required"),
        ({"type": "fixed", "basis_points": None, "amounts": {"usd": 0}}, "amounts.usd", "out_of_range"),
        ({"type": "fixed", "basis_points": None, "amounts": {"zzz": 5}}, "amounts", "unsupported_currency"),
        ({"type": "fixed", "basis_points": 500, "amounts": {"usd": 5}}, "basis_points", "not_allowed"),
        ({"duration": "sometimes"}, "duration", "invalid_choice"),
        ({"duration": "repeating"}, "duration_in_months", "required"),
        ({"duration": "once", "duration_in_months": 3}, "duration_in_months", "not_allowed"),
        ({"code": "ab"}, "code", "invalid_code"),
        ({"code": "x" * 65}, "code", "invalid_code"),
        ({"code": "no spaces"}, "code", "invalid_code"),
        ({"code": "ÉTÉ2025"}, "code", "invalid_code"),
        ({"max_redemptions": 0}, "max_redemptions", "out_of_range"),
        ({"max_redemptions_per_customer": 0}, "max_redemptions_per_customer", "out_of_range"),
        ({"product_ids": ["not-a-uuid"]}, "product_ids", "unknown_product"),
        ({"product_ids": ["00000000-0000-0000-0000-000000000000"]}, "product_ids", "unknown_product"),
        ({"metadata": ["a"]}, "metadata", "invalid"),
    ],
)
def test_create_refuses_bad_input(org, fields, field, code):
    fields = {"name": "Bad", "type": "percentage", "basis_points": 1000, **fields}
    assert error_of(services.discount_create, organization=org, **fields) == (field, code)
    assert not Discount.objects.exists()


def test_window_must_be_ordered_and_end_in_the_future(org):
    now = clock.now()
    base = {"organization": org, "name": "W", "type": "percentage", "basis_points": 100}
    assert error_of(
        services.discount_create, **base, starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=1)
    ) == ("ends_at", "ends_before_start")
    assert error_of(services.discount_create, **base, ends_at=now - timedelta(seconds=1)) == (
        "ends_at",
        "ends_in_past",
    )
    naive = now.replace(tzinfo=None)
    assert error_of(services.discount_create, **base, starts_at=naive) == ("starts_at", "invalid")


def test_codes_are_unique_per_organization_case_insensitively(org, make_org, make_discount):
    make_discount(code="Summer")
    assert error_of(
        services.discount_create,
        organization=org,
        name="Again",
        type="percentage",
        basis_points=5,
        code="SUMMER",
    ) == ("code", "unique")
    make_discount(make_org("Other"), code="summer")  # another merchant may use it
    other = make_discount(code="WINTER")
    assert error_of(services.discount_update, discount=other, code="summer") == ("code", "unique")
    assert services.discount_update(discount=other, code="winter").code == "winter"  # its own code, recased


def test_products_must_belong_to_the_organization(org, make_org, make_product):
    foreign = make_product(make_org("Other"), name="Theirs")
    assert error_of(
        services.discount_create,
        organization=org,
        name="X",
        type="percentage",
        basis_points=5,
        product_ids=[foreign.pk],
    ) == ("product_ids", "unknown_product")


def test_update(make_discount, product, operator):
    discount = make_discount(code="OLD")
    ends = clock.now() + timedelta(days=7)
    updated = services.discount_update(
        discount=discount,
        name="New name",
        code="NEW",
        ends_at=ends,
        max_redemptions=5,
        metadata={"a": "b"},
        product_ids=[product.pk],
        actor=operator,
    )
    assert (updated.name, updated.code, updated.ends_at, updated.max_redemptions) == (
        "New name",
        "NEW",
        ends,
        5,
    )
    assert list(updated.products.all()) == [product]
    entry = AuditEntry.objects.get(action="discount.update")
    assert entry.data["after"]["code"] == "NEW"
    assert services.discount_update(discount=discount, product_ids=[]).products.count() == 0


def test_update_refuses_what_was_promised(make_discount):
    discount = make_discount()
    for field, value in [("basis_points", 5000), ("type", "fixed"), ("amounts", {}), ("duration", "forever")]:
        assert error_of(services.discount_update, discount=discount, **{field: value}) == (field, "immutable")
    assert error_of(services.discount_update, discount=discount, colour="red") == ("colour", "unknown_field")


def test_max_redemptions_cannot_go_below_the_uses(make_discount, product, make_checkout):
    discount = make_discount(code="LIMITED", max_redemptions=5)
    for i in range(3):
        services.discount_reserve(
            discount=discount, checkout=make_checkout(product), customer_email=f"c{i}@x.io"
        )
    assert error_of(services.discount_update, discount=discount, max_redemptions=2) == (
        "max_redemptions",
        "below_redemptions",
    )
    assert services.discount_update(discount=discount, max_redemptions=3).max_redemptions == 3
    assert services.discount_update(discount=discount, max_redemptions=None).max_redemptions is None


def test_archive_and_delete(make_discount, product, make_checkout):
    unused = make_discount(code="UNUSED")
    services.discount_delete(discount=unused)
    assert not Discount.objects.filter(pk=unused.pk).exists()

    used = make_discount(code="USED")
    services.discount_reserve(discount=used, checkout=make_checkout(product), customer_email="a@x.io")
    assert error_of(services.discount_delete, discount=used) == (None, "discount_redeemed")
    assert services.discount_archive(discount=used).is_archived
    assert not services.discount_unarchive(discount=used).is_archived


def test_delete_refused_while_a_checkout_holds_it(make_discount, product, make_checkout):
    discount = make_discount(code="HELD")
    make_checkout(product, discount=discount)
    assert error_of(services.discount_delete, discount=discount) == (None, "discount_in_use")


# --- finding and reserving ---------------------------------------------------------------------


@pytest.fixture
def find(org, product):
    def call(code: str, **kwargs):
        args = {
            "organization": org,
            "code": code,
            "product": product,
            "currency": "usd",
            "customer_email": "buyer@example.com",
            "at": clock.now(),
            **kwargs,
        }
        return services.discount_find_for_checkout(**args)

    return call


def find_error(find, code: str, **kwargs) -> str:
    with pytest.raises(InvalidInput) as caught:
        find(code, **kwargs)
    assert caught.value.field == "discount_code"
    return caught.value.code


def test_find_is_case_insensitive(find, make_discount):
    discount = make_discount(code="Spring-25")
    assert find("spring-25") == discount
    assert find("  SPRING-25 ") == discount
    assert find_error(find, "SPRING") == "discount_not_found"
    assert find_error(find, "") == "discount_not_found"
    assert find_error(find, "x" * 500) == "discount_not_found"


def test_find_in_another_organization_is_not_found(find, make_org, make_discount):
    make_discount(make_org("Other"), code="THEIRS")
    assert find_error(find, "THEIRS") == "discount_not_found"


def test_find_checks_the_window(find, make_discount):
    now = clock.now()
    make_discount(code="LATER", starts_at=now + timedelta(days=1))
    make_discount(code="SOON-OVER", ends_at=now + timedelta(hours=1))
    assert find_error(find, "LATER") == "discount_not_started"
    assert find("LATER", at=now + timedelta(days=1)).code == "LATER"
    assert find("SOON-OVER").code == "SOON-OVER"
    assert find_error(find, "SOON-OVER", at=now + timedelta(hours=1)) == "discount_expired"  # [start, end)


def test_find_checks_archive_product_and_currency(find, make_discount, make_product):
    other = make_product(name="Other")
    archived = make_discount(code="GONE")
    services.discount_archive(discount=archived)
    make_discount(code="OTHER-ONLY", product_ids=[other.pk])
    make_discount(code="EUROS", type="fixed", amounts={"eur": 500})
    assert find_error(find, "GONE") == "discount_archived"
    assert find_error(find, "OTHER-ONLY") == "discount_not_applicable"
    assert find("OTHER-ONLY", product=other).code == "OTHER-ONLY"
    assert find_error(find, "EUROS") == "discount_currency"
    assert find("EUROS", currency="eur").code == "EUROS"


def test_reserve_expired_discount_is_refused(make_discount, product, make_checkout):
    discount = make_discount(code="SHORT", ends_at=clock.now() + timedelta(minutes=5))
    checkout = make_checkout(product)
    with time_machine.travel(clock.now() + timedelta(minutes=6)), pytest.raises(InvalidInput) as caught:
        services.discount_reserve(discount=discount, checkout=checkout, customer_email="a@x.io")
    assert caught.value.code == "discount_expired"
    assert not DiscountRedemption.objects.exists()


def test_reserve_not_started_is_refused(make_discount, product, make_checkout):
    discount = make_discount(code="NEXTWEEK", starts_at=clock.now() + timedelta(days=7))
    with pytest.raises(InvalidInput) as caught:
        services.discount_reserve(discount=discount, checkout=make_checkout(product), customer_email="a@x.io")
    assert caught.value.code == "discount_not_started"


def test_reserve_checks_the_product_restriction(make_discount, product, make_product, make_checkout):
    discount = make_discount(code="ONLY-OTHER", product_ids=[make_product(name="Other").pk])
    with pytest.raises(InvalidInput) as caught:
        services.discount_reserve(discount=discount, checkout=make_checkout(product), customer_email="a@x.io")
    assert caught.value.code == "discount_not_applicable"


def test_reserve_until_exhausted(find, make_discount, product, make_checkout):
    discount = make_discount(code="TWICE", max_redemptions=2)
    first = services.discount_reserve(
        discount=discount, checkout=make_checkout(product), customer_email="A@x.io"
    )
    assert (first.status, first.customer_email, first.organization_id) == (
        "reserved",
        "a@x.io",
        discount.organization_id,
    )
    services.discount_reserve(discount=discount, checkout=make_checkout(product), customer_email="b@x.io")

    with pytest.raises(InvalidInput) as caught:
        services.discount_reserve(discount=discount, checkout=make_checkout(product), customer_email="c@x.io")
    assert (caught.value.field, caught.value.code) == ("discount_code", "discount_exhausted")
    assert find_error(find, "TWICE") == "discount_exhausted"
    assert DiscountRedemption.objects.count() == 2


def test_per_customer_limit_ignores_email_case(find, make_discount, product, make_checkout):
    discount = make_discount(code="ONCE-EACH", max_redemptions_per_customer=1)
    services.discount_reserve(
        discount=discount, checkout=make_checkout(product), customer_email="Ann@Example.com"
    )

    with pytest.raises(InvalidInput) as caught:
        services.discount_reserve(
            discount=discount, checkout=make_checkout(product), customer_email="ann@example.COM"
        )
    assert caught.value.code == "discount_exhausted"
    assert find_error(find, "ONCE-EACH", customer_email="ANN@example.com") == "discount_exhausted"
    assert find("ONCE-EACH", customer_email="bob@example.com") == discount
    services.discount_reserve(
        discount=discount, checkout=make_checkout(product), customer_email="bob@example.com"
    )


def test_reserve_is_idempotent_per_checkout(find, make_discount, product, make_checkout):
    discount = make_discount(code="ONE", max_redemptions=1)
    checkout = make_checkout(product)
    first = services.discount_reserve(discount=discount, checkout=checkout, customer_email="a@x.io")
    assert services.discount_reserve(discount=discount, checkout=checkout, customer_email="a@x.io") == first
    assert DiscountRedemption.objects.count() == 1
    # The checkout holding the last use may still find its code; another checkout may not.
    assert find("ONE", checkout=checkout) == discount
    assert find_error(find, "ONE", checkout=make_checkout(product)) == "discount_exhausted"


def test_switching_discount_gives_the_old_reservation_back(make_discount, product, make_checkout):
    first = make_discount(code="FIRST", max_redemptions=1)
    second = make_discount(code="SECOND")
    checkout = make_checkout(product)
    services.discount_reserve(discount=first, checkout=checkout, customer_email="a@x.io")
    services.discount_reserve(discount=second, checkout=checkout, customer_email="a@x.io")
    assert DiscountRedemption.objects.get().discount == second
    services.discount_reserve(discount=first, checkout=make_checkout(product), customer_email="b@x.io")


def test_release_and_redeem(make_discount, product, make_checkout, customer):
    discount = make_discount(code="ONLYONE", max_redemptions=1)
    checkout = make_checkout(product, discount=discount)
    services.discount_reserve(discount=discount, checkout=checkout, customer_email="a@x.io")
    assert services.discount_release(checkout=checkout) is True
    assert services.discount_release(checkout=checkout) is False
    assert not DiscountRedemption.objects.exists()

    services.discount_reserve(discount=discount, checkout=checkout, customer_email="a@x.io")
    redeemed = services.discount_redeem(checkout=checkout, customer=customer)
    assert (redeemed.status, redeemed.customer) == ("redeemed", customer)
    assert services.discount_redeem(checkout=checkout, customer=customer) == redeemed  # idempotent
    assert services.discount_release(checkout=checkout) is False  # a redeemed use stays
    assert DiscountRedemption.objects.get().status == "redeemed"


def test_redeem_after_release_still_records_the_use(make_discount, product, make_checkout, customer):
    discount = make_discount(code="LATE")
    checkout = make_checkout(product, discount=discount, customer_email="late@x.io")
    redemption = services.discount_redeem(checkout=checkout, customer=customer)
    assert (redemption.status, redemption.customer_email, redemption.discount) == (
        "redeemed",
        "late@x.io",
        discount,
    )
    assert services.discount_redeem(checkout=make_checkout(product), customer=customer) is None
