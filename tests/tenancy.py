"""One of everything an organization can own, for the tenant-isolation walk.

Each issue that adds tenant-owned objects appends a seeder here, so the walk in
tests/api/test_tenant_isolation.py tries its ids against every route.
"""

from collections.abc import Callable

from accounts import services as account_services

Seeder = Callable[..., None]


def seed_customers(organization) -> None:
    account_services.customer_create(
        organization=organization, email="victim@example.com", name="Victim", external_id="victim-ext"
    )
    account_services.customer_create(organization=organization, email="second@example.com")


def seed_payments(organization) -> None:
    from accounts.models import Customer
    from billing.payments import services as payment_services

    customer = Customer.objects.filter(organization=organization).first()
    payment_services.payment_create(
        organization=organization,
        customer=customer,
        reference=f"order:tenancy-{organization.pk}",
        amount=1500,
        currency="usd",
        trigger="purchase",
    )


def seed_catalog(organization) -> None:
    from billing.catalog import services as catalog_services

    one_time = catalog_services.product_create(
        organization=organization,
        name="Tenancy ebook",
        prices=[
            {"currency": "usd", "type": "fixed", "amount": 1900},
            {"currency": "eur", "type": "custom", "minimum_amount": 0, "preset_amount": 500},
        ],
    )
    catalog_services.product_create(
        organization=organization,
        name="Tenancy team plan",
        recurring_interval="month",
        prices=[
            {
                "currency": "usd",
                "type": "seat_based",
                "seat_tier_mode": "graduated",
                "seat_tiers": [{"up_to": 5, "unit_amount": 1000}, {"up_to": None, "unit_amount": 800}],
            }
        ],
    )
    catalog_services.discount_create(
        organization=organization,
        name="Tenancy launch",
        code="TENANCY25",
        type="percentage",
        basis_points=2500,
        max_redemptions=10,
        product_ids=[one_time.pk],
    )


SEEDERS: list[Seeder] = [seed_customers, seed_payments]
SEEDERS.append(seed_catalog)


def seed_everything(organization) -> None:
    for seeder in SEEDERS:
        seeder(organization)


def seed_purchases(organization) -> None:
    """A succeeded checkout with its paid order and subscription, and an open checkout."""
    from billing.catalog import services as catalog_services
    from billing.checkout import services as checkout_services

    plan = catalog_services.product_create(
        organization=organization,
        name="Tenancy free plan",
        recurring_interval="month",
        prices=[{"currency": "usd", "type": "free"}],
    )
    paid = checkout_services.checkout_create(
        organization=organization, product_id=plan.pk, customer_email="victim@example.com"
    )
    checkout_services.checkout_confirm(checkout=paid)
    checkout_services.checkout_create(
        organization=organization, product_id=plan.pk, customer_email="b@example.com"
    )


SEEDERS.append(seed_purchases)


def seed_refunds(organization) -> None:
    """A paid order (its payment settled without a processor call) with a partial refund."""
    from accounts.models import Customer
    from billing.orders.services import Line, order_create
    from billing.payments import services as payment_services
    from billing.refunds.services import refund_create
    from core import clock

    customer = Customer.objects.filter(organization=organization).first()
    order = order_create(
        organization=organization,
        customer=customer,
        billing_reason="purchase",
        currency="usd",
        lines=[Line(label="Tenancy refundable", amount=3000)],
    )
    payment = payment_services.payment_create(
        organization=organization,
        customer=customer,
        reference=order.reference,
        amount=3000,
        currency="usd",
        trigger="purchase",
    )
    payment_services.payment_apply_snapshot(
        payment=payment,
        status="succeeded",
        observed_at=clock.now(),
        facts={"processor_payment_id": f"pi_tenancy_{payment.pk.hex[:12]}"},
    )
    order.refresh_from_db()
    refund_create(order=order, amount=1000, reason="requested_by_customer", comment="tenancy")


SEEDERS.append(seed_refunds)


def seed_ledger(organization) -> None:
    """A paid order's posting and a processor fee's (ledger transactions, /v1/balance)."""
    from accounts.models import Customer
    from billing.ledger.postings import ledger_post_processor_fee
    from billing.orders.services import Line, order_create
    from billing.payments import services as payment_services
    from billing.payments.models import Payment

    customer = Customer.objects.filter(organization=organization).first()
    order_create(
        organization=organization, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="Tenancy ledger", amount=2500)], paid=True,
    )  # fmt: skip
    payment = payment_services.payment_create(
        organization=organization, customer=customer, reference=f"order:ledger-{organization.pk}",
        amount=2500, currency="usd", trigger="purchase",
    )  # fmt: skip
    Payment.objects.filter(pk=payment.pk).update(status="succeeded", fee=103, net=2397)
    ledger_post_processor_fee(payment=payment, fee=103, currency="usd")


SEEDERS.append(seed_ledger)


def seed_disputes(organization) -> None:
    """A chargeback on a paid order, funds withdrawn (the dispute and its ledger postings)."""
    from accounts.models import Customer
    from billing.disputes.services import dispute_apply_snapshot
    from billing.orders.services import Line, order_create
    from billing.payments import services as payment_services
    from core import clock

    customer = Customer.objects.filter(organization=organization).first()
    order = order_create(
        organization=organization, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="Tenancy disputed", amount=4000)],
    )  # fmt: skip
    payment = payment_services.payment_create(
        organization=organization, customer=customer, reference=order.reference, amount=4000,
        currency="usd", trigger="purchase",
    )  # fmt: skip
    payment = payment_services.payment_apply_snapshot(
        payment=payment, status="succeeded", observed_at=clock.now(),
        facts={"processor_payment_id": f"pi_dispute_{payment.pk.hex[:12]}"},
    )  # fmt: skip
    dispute_apply_snapshot(
        payload={
            "id": f"dp_tenancy_{payment.pk.hex[:12]}", "object": "dispute", "amount": 4000, "currency": "usd",
            "payment_intent": payment.processor_payment_id, "reason": "fraudulent", "status": "needs_response",
            "balance_transactions": [{"object": "balance_transaction", "amount": -4000, "fee": 1500}],
        },
        observed_at=clock.now(),
        event_type="charge.dispute.created",
    )  # fmt: skip


SEEDERS.append(seed_disputes)


def seed_wallet(organization) -> None:
    # The posting itself (wallet_adjust would add an AuditEntry, whose small integer id
    # would show up as a "leak" inside any number).
    from accounts.models import Customer
    from billing.ledger.postings import ledger_post_wallet_credit

    customer = Customer.objects.filter(organization=organization).order_by("created_at").first()
    ledger_post_wallet_credit(
        customer=customer, amount=700, currency="usd", idempotency_key=f"tenancy:wallet:{customer.pk}"
    )


SEEDERS.append(seed_wallet)


def seed_webhooks(organization) -> None:
    """An endpoint, its test event and the event's delivery (the consumer run by hand: the
    walk's database fixture never commits)."""
    from billing.webhooks.delivery import webhook_deliveries_create
    from billing.webhooks.services import webhook_endpoint_create, webhook_endpoint_send_test

    endpoint, _ = webhook_endpoint_create(
        organization=organization, url="http://localhost:9/tenancy-hook", event_types=["*"]
    )
    webhook_deliveries_create(event=webhook_endpoint_send_test(endpoint=endpoint))


SEEDERS.append(seed_webhooks)


def seed_events(organization) -> None:
    """Domain events come with the changes above (customer.created, product.created, ...);
    one more of a kind the seeders above do not record."""
    from accounts.models import Customer

    customer = Customer.objects.filter(organization=organization).order_by("created_at").first()
    account_services.customer_update(customer=customer, name="Victim (renamed)")


SEEDERS.append(seed_events)


def seed_benefits(organization) -> None:
    """A license key and a feature flag on the purchased plan, granted (through the grant
    engine: the walk's database fixture never commits) to the subscription ``seed_purchases``
    made, one activation of the key, a deleted benefit and one no product unlocks."""
    from benefits import grants
    from benefits import services as benefit_services
    from benefits.license_keys import services as license_key_services
    from benefits.license_keys.models import LicenseKey
    from benefits.models import BenefitGrant
    from billing.subscriptions.models import Subscription

    # The deleted one first: lists and the walks take the newest row as the sample.
    gone = benefit_services.benefit_create(
        organization=organization, type="custom", description="Tenancy gone"
    )
    benefit_services.benefit_delete(benefit=gone)
    subscription = Subscription.objects.filter(organization=organization).order_by("created_at").first()
    license_benefit = benefit_services.benefit_create(
        organization=organization,
        type="license_keys",
        description="Tenancy license",
        properties={"activations": {"limit": 3}},
    )
    flag = benefit_services.benefit_create(
        organization=organization,
        type="feature_flag",
        description="Tenancy flag",
        properties={"key": "tenancy"},
    )
    benefit_services.benefit_create(organization=organization, type="custom", description="Tenancy note")
    benefit_services.product_benefits_set(product=subscription.product, benefits=[license_benefit, flag])
    grants.grants_reconcile(subscription=subscription, reason="tenancy")
    for grant in BenefitGrant.objects.filter(subscription=subscription):
        grants.grant_process(grant_id=grant.pk)
    key = LicenseKey.objects.get(grant__subscription=subscription, benefit=license_benefit)
    license_key_services.license_key_activate(organization_id=organization.pk, key=key.key, label="tenancy")


SEEDERS.append(seed_benefits)


def seed_files(organization) -> None:
    """An uploaded file and an archived one (downloadable benefits)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from benefits.downloadables.services import file_archive, file_create

    file_create(organization=organization, upload=SimpleUploadedFile("tenancy.pdf", b"%PDF tenancy"))
    old = file_create(organization=organization, upload=SimpleUploadedFile("old.pdf", b"%PDF old"))
    file_archive(file=old)


SEEDERS.append(seed_files)
