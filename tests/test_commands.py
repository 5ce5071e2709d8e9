"""The setup commands a new user runs (through `make run`) or an operator uses."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import AccessToken, Customer, Organization, User
from accounts.services import access_token_authenticate
from benefits.models import Benefit, BenefitGrant
from billing.catalog.models import Discount, Price
from billing.disputes.models import Dispute
from billing.ledger.models import InvariantRun, ReconciliationRun
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.refunds.models import Refund
from billing.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


def test_create_organization_prints_a_working_token(capsys):
    call_command(
        "create_organization", "--name", "Globex", "--owner-email", "CEO@globex.test", "--currency", "eur"
    )
    out = capsys.readouterr().out
    secret = next(line.split()[-1] for line in out.splitlines() if line.startswith("token:"))
    token = access_token_authenticate(secret=secret)
    assert token.organization.name == "Globex"
    assert token.organization.default_currency == "eur"
    assert token.organization.memberships.get().user.email == "ceo@globex.test"


def test_create_organization_refuses_bad_input_and_writes_nothing():
    with pytest.raises(CommandError):
        call_command(
            "create_organization", "--name", "X", "--owner-email", "a@b.test", "--scopes", "everything:write"
        )
    with pytest.raises(CommandError):
        call_command(
            "create_organization", "--name", "X", "--owner-email", "a@b.test", "--currency", "usdollars"
        )
    assert not Organization.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_bootstrap_and_demo_seed_are_idempotent(capsys):
    call_command("bootstrap")
    call_command("bootstrap")
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert Organization.objects.count() == 2
    assert Customer.objects.count() == 40
    acme = Organization.objects.get(slug="acme")
    # every price type, paid orders and live subscriptions, created once
    assert set(Price.objects.filter(organization=acme).values_list("type", flat=True)) == {
        "fixed",
        "custom",
        "free",
        "seat_based",
    }
    assert Order.objects.filter(organization=acme).exclude(status="pending").count() == 12
    # money moved after the sales, once: two refunds, a chargeback, a clean reconciliation
    assert Order.objects.filter(organization=acme, status__in=["partially_refunded", "refunded"]).count() == 2
    assert Refund.objects.filter(organization=acme, status="succeeded").count() == 2
    assert Dispute.objects.filter(organization=acme, status="needs_response").count() == 1
    assert ReconciliationRun.objects.get().ok
    assert InvariantRun.objects.get().failing == []  # the dashboard's invariants card is green
    # eight subscriptions sold; the chargeback ended one (the demo keeps dispute_revokes_access on)
    assert Subscription.objects.filter(organization=acme).count() == 8
    assert Subscription.objects.filter(organization=acme, status__in=["active", "trialing"]).count() == 7
    assert Payment.objects.filter(organization=acme).exclude(processor="manual").count() == 0
    assert acme.payment_processor == "stripe"
    assert Discount.objects.filter(organization=acme).count() == 3
    # benefits on the plans, granted to their buyers at once (the chargeback's subscription lost
    # its grants); a second seed creates none
    assert Benefit.objects.filter(organization=acme).count() == 4
    granted = BenefitGrant.objects.filter(organization=acme, status="granted")
    assert granted.filter(benefit__type="license_keys").count() >= 5
    assert granted.filter(benefit__type="downloadables").exists()  # the e-book orders
    assert not BenefitGrant.objects.filter(next_attempt_at__isnull=False).exists()
    # every run prints a fresh working token; the previous demo token is revoked
    assert AccessToken.objects.filter(revoked_at__isnull=True).count() == 1
    secret = next(word for word in second.split() if word.startswith("recur_at_"))
    assert access_token_authenticate(secret=secret) is not None
    old = next(word for word in first.split() if word.startswith("recur_at_"))
    assert access_token_authenticate(secret=old) is None


@pytest.mark.parametrize("again", ["Globex", "  globex ", "GLOBEX"])
def test_create_organization_refuses_a_duplicate_name_and_writes_nothing(capsys, again):
    call_command("create_organization", "--name", "Globex", "--owner-email", "ceo@globex.test")
    capsys.readouterr()
    with pytest.raises(CommandError, match="An organization named 'Globex' already exists"):
        call_command("create_organization", "--name", again, "--owner-email", "new-owner@globex.test")
    assert Organization.objects.count() == 1
    assert AccessToken.objects.count() == 1
    assert not User.objects.filter(email="new-owner@globex.test").exists()


def test_backoffice_refuses_a_duplicate_organization_name_as_a_form_error(client, operator):
    call_command("create_organization", "--name", "Globex", "--owner-email", "ceo@globex.test")
    client.force_login(operator)
    response = client.post(
        reverse("admin:accounts_organization_add"),
        {"name": "globex", "slug": "globex-2", "default_currency": "usd", "memberships-TOTAL_FORMS": "0",
         "memberships-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "An organization named &#x27;Globex&#x27; already exists." in response.content.decode()
    assert Organization.objects.count() == 1
