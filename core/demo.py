"""Demo data for `make run`: a believable merchant to click through. Idempotent.

Later features append their seeders to ``SEEDERS``; each gets the demo organization.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import Group

from accounts import services as account_services
from accounts.models import AccessToken, Customer, Organization, User
from billing.payments.models import Payment
from core import clock

DEMO_PASSWORD = "recur-demo"
DEMO_OPERATOR = "admin@recur.test"
DEMO_STAFF = {"support@recur.test": "support", "finance@recur.test": "finance"}
DEMO_TOKEN_NAME = "demo (rotated by make run)"

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Radia",
    "Edsger",
    "Frances",
]
LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Perlman"]
PLACES = [
    ("FR", "Paris", "75002"),
    ("US", "Austin", "78701"),
    ("DE", "Berlin", "10115"),
    ("GB", "London", "EC1A 1BB"),
    ("JP", "Tokyo", "100-0001"),
    ("SE", "Stockholm", "111 22"),
]


@dataclass
class DemoResult:
    organization: Organization
    operator_email: str
    password: str
    token: str


def _user(email: str, *, superuser: bool = False, group: str | None = None) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        make = User.objects.create_superuser if superuser else User.objects.create_user
        user = make(email, DEMO_PASSWORD, is_staff=True) if not superuser else make(email, DEMO_PASSWORD)
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


def seed_customers(organization: Organization) -> None:
    rng = random.Random(42)
    for n in range(40):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        country, city, postal = rng.choice(PLACES)
        if Customer.objects.filter(organization=organization, external_id=f"demo-{n}").exists():
            continue
        account_services.customer_create(
            organization=organization,
            email=f"{first}.{last}.{n}@example.com".lower(),
            name=f"{first} {last}",
            external_id=f"demo-{n}",
            billing_address={
                "line1": f"{n + 1} Demo Street",
                "city": city,
                "postal_code": postal,
                "country": country,
            },
            metadata={"source": "demo"},
        )


def seed_catalog_and_sales(organization: Organization) -> None:
    """Products of every price type, discounts, and paid orders with active subscriptions.
    Sales go through the real checkout services with the manual processor, so no Stripe is needed."""
    from billing.catalog import services as catalog
    from billing.checkout import services as checkout
    from billing.payments.manual import ManualProcessor

    if organization.products.exists():
        return
    pro = catalog.product_create(
        organization=organization,
        name="Acme Pro",
        description="Everything in Acme, billed monthly.",
        recurring_interval="month",
        prices=[
            {"currency": "usd", "type": "fixed", "amount": 2900},
            {"currency": "eur", "type": "fixed", "amount": 2700},
        ],
    )
    team = catalog.product_create(
        organization=organization,
        name="Acme Team",
        description="Per seat, cheaper in bulk.",
        recurring_interval="month",
        prices=[
            {
                "currency": "usd",
                "type": "seat_based",
                "seat_tier_mode": "graduated",
                "minimum_seats": 2,
                "maximum_seats": 500,
                "seat_tiers": [{"up_to": 10, "unit_amount": 1200}, {"up_to": None, "unit_amount": 900}],
            }
        ],
    )
    annual = catalog.product_create(
        organization=organization,
        name="Acme Pro (annual)",
        recurring_interval="year",
        prices=[{"currency": "usd", "type": "fixed", "amount": 29000}],
    )
    ebook = catalog.product_create(
        organization=organization,
        name="The Billing Handbook (e-book)",
        prices=[{"currency": "usd", "type": "fixed", "amount": 1900}],
    )
    tip = catalog.product_create(
        organization=organization,
        name="Support the project",
        description="Pay what you want.",
        prices=[
            {
                "currency": "usd",
                "type": "custom",
                "minimum_amount": 100,
                "maximum_amount": 100000,
                "preset_amount": 500,
            }
        ],
    )
    community = catalog.product_create(
        organization=organization,
        name="Acme Community",
        recurring_interval="month",
        prices=[{"currency": "usd", "type": "free"}],
    )
    catalog.discount_create(
        organization=organization,
        name="Launch week",
        code="LAUNCH20",
        type="percentage",
        basis_points=2000,
        duration="once",
    )
    catalog.discount_create(
        organization=organization,
        name="Team onboarding",
        code="TEAM10",
        type="percentage",
        basis_points=1000,
        duration="repeating",
        duration_in_months=3,
        product_ids=[team.pk],
    )
    catalog.discount_create(
        organization=organization,
        name="Five off",
        code="FIVEOFF",
        type="fixed",
        amounts={"usd": 500},
        duration="forever",
        max_redemptions=100,
    )

    processor = ManualProcessor()
    customers = list(organization.customers.order_by("external_id")[:12])
    sales = [
        (pro, {}), (pro, {"discount_code": "LAUNCH20"}), (team, {"seats": 14, "discount_code": "TEAM10"}),
        (annual, {}), (ebook, {}), (ebook, {"discount_code": "FIVEOFF"}), (tip, {"amount": 1500}),
        (community, {}), (pro, {"trial_days": 14}), (team, {"seats": 3}), (pro, {}), (ebook, {}),
    ]  # fmt: skip
    # Recorded as manual payments (refunds go back the same way); the merchant sells through
    # Stripe afterwards.
    processor_setting = organization.payment_processor
    Organization.objects.filter(pk=organization.pk).update(payment_processor=Payment.Processor.MANUAL)
    organization.refresh_from_db()
    for customer, (product, options) in zip(customers, sales, strict=False):
        opened = checkout.checkout_create(
            organization=organization, product_id=product.pk, customer_id=customer.pk, **options
        )
        checkout.checkout_confirm(checkout=opened, payment_method_id="pm_demo_card", processor=processor)
    Organization.objects.filter(pk=organization.pk).update(payment_processor=processor_setting)


def seed_money_movements(organization: Organization) -> None:
    """A partial and a full refund, an open chargeback, a wallet credit, a balance adjustment
    and a reconciliation and an invariant run: something on every ledger page."""
    from billing.disputes.services import dispute_apply_snapshot
    from billing.ledger.adjustments import balance_adjust
    from billing.ledger.reconciliation import reconciliation_run
    from billing.ledger.reconciliation.invariants import invariants_run
    from billing.ledger.wallet import wallet_adjust
    from billing.orders.models import Order
    from billing.refunds.models import Refund
    from billing.refunds.services import refund_request

    if Refund.objects.filter(organization=organization).exists():
        return
    paid = list(
        Order.objects.filter(organization=organization, status="paid", total__gt=0).order_by("created_at")
    )
    if len(paid) < 3:
        return
    operator = User.objects.get(email=DEMO_OPERATOR)
    for order, amount, reason in (
        (paid[0], paid[0].total // 2, "requested_by_customer"),
        (paid[1], None, "duplicate"),
    ):
        refund_request(order=order, amount=amount, reason=reason, comment="Demo refund", actor=operator)
    disputed = paid[2]
    payment = Payment.objects.filter(
        reference__in=[disputed.reference, f"checkout:{disputed.checkout_id}"]
    ).first()
    now = clock.now()
    dispute_apply_snapshot(
        payload={
            "id": f"dp_demo_{disputed.pk.hex[:12]}",
            "object": "dispute",
            "amount": disputed.total,
            "currency": disputed.currency,
            "charge": payment.processor_charge_id if payment else "",
            "payment_intent": payment.processor_payment_id if payment else "",
            "reason": "fraudulent",
            "status": "needs_response",
            "evidence_details": {"due_by": int((now + timedelta(days=5)).timestamp())},
            "balance_transactions": [{"amount": -disputed.total, "fee": organization.dispute_fee}],
            "created": int(now.timestamp()),
        },
        observed_at=now,
        event_type="charge.dispute.created",
    )
    wallet_adjust(
        customer=paid[3].customer if len(paid) > 3 else paid[0].customer,
        amount=1000,
        currency=organization.default_currency,
        reason="Goodwill credit for a slow support answer",
        actor=operator,
    )
    balance_adjust(
        organization=organization,
        amount=2500,
        currency=organization.default_currency,
        reason="Demo: processor fee refunded by the platform",
        actor=operator,
    )
    reconciliation_run()
    invariants_run()


SEEDERS: list[Callable[[Organization], None]] = [seed_customers, seed_catalog_and_sales, seed_money_movements]


def demo_seed() -> DemoResult:
    """Each step is its own transaction (payments refuse to run inside one); every step is idempotent."""
    operator = _user(DEMO_OPERATOR, superuser=True)
    for email, group in DEMO_STAFF.items():
        _user(email, group=group)
    organization = Organization.objects.filter(slug="acme").first() or account_services.organization_create(
        name="Acme Software", slug="acme", owner=operator, invoice_prefix="ACME", email="billing@acme.test"
    )
    if not Organization.objects.filter(slug="globex").exists():
        account_services.organization_create(name="Globex", slug="globex", default_currency="eur")
    for seeder in SEEDERS:
        seeder(organization)
    # A fresh demo token each run: the secret is shown once, so the previous one is revoked.
    AccessToken.objects.filter(
        organization=organization, name=DEMO_TOKEN_NAME, revoked_at__isnull=True
    ).update(revoked_at=clock.now())
    _, secret = account_services.access_token_create(organization=organization, name=DEMO_TOKEN_NAME)
    return DemoResult(
        organization=organization, operator_email=operator.email, password=DEMO_PASSWORD, token=secret
    )
