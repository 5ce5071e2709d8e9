"""The accounts pages: forms work and go through the services."""

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import Customer, Membership, Organization, User
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def management_form(prefix: str, total: int = 0, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def test_user_add_and_change(backoffice):
    add = reverse("admin:accounts_user_add")
    assert backoffice.get(add).status_code == 200

    response = backoffice.post(
        add,
        {
            "email": "New.Operator@Recur.test",
            "usable_password": "true",
            "password1": "s3cret-Pass!x",
            "password2": "s3cret-Pass!x",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.operator@recur.test")
    assert user.check_password("s3cret-Pass!x")
    change = reverse("admin:accounts_user_change", args=[user.pk])
    assert backoffice.get(change).status_code == 200

    response = backoffice.post(
        change,
        {
            "email": "new.operator@recur.test",
            "full_name": "New Operator",
            "is_active": "on",
            "is_staff": "on",
            "date_joined_0": "2025-01-01",
            "date_joined_1": "00:00:00",
            **management_form("memberships"),
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert (user.full_name, user.is_staff) == ("New Operator", True)


def test_user_add_refuses_a_duplicate_email(backoffice, operator):
    response = backoffice.post(
        reverse("admin:accounts_user_add"),
        {"email": "OPERATOR@recur.test", "usable_password": "false"},
    )

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors


def org_form(org: Organization, **changes) -> dict:
    data = {
        "name": org.name,
        "email": org.email,
        "default_currency": org.default_currency,
        "invoice_prefix": org.invoice_prefix,
        "platform_fee_bps": org.platform_fee_bps,
        "platform_fee_fixed": org.platform_fee_fixed,
        "payout_hold_days": org.payout_hold_days,
        "proration_default": org.proration_default,
        "payment_processor": org.payment_processor,
        "dunning_schedule": ",".join(str(d) for d in org.dunning_schedule),
        "benefit_grace_days": org.benefit_grace_days,
        "dispute_fee": org.dispute_fee,
        **({"dispute_revokes_access": "on"} if org.dispute_revokes_access else {}),
        **management_form("memberships", total=org.memberships.count(), initial=org.memberships.count()),
    }
    for i, membership in enumerate(org.memberships.all()):
        data |= {
            f"memberships-{i}-id": membership.pk,
            f"memberships-{i}-organization": org.pk,
            f"memberships-{i}-user": membership.user_id,
            f"memberships-{i}-role": membership.role,
        }
    return data | changes


def test_organization_change_goes_through_the_service(backoffice, operator, org):
    change = reverse("admin:accounts_organization_change", args=[org.pk])
    html = backoffice.get(change).content.decode()
    assert "Invoicing" in html and 'id="id_invoice_next_number"' not in html  # read-only counter

    response = backoffice.post(change, org_form(org, platform_fee_bps="250", dunning_schedule="1,3"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    org.refresh_from_db()
    assert (org.platform_fee_bps, org.dunning_schedule) == (250, [1, 3])
    entry = AuditEntry.objects.get(action="organization.update")
    assert entry.actor == operator
    assert entry.data["after"] == {"platform_fee_bps": 250, "dunning_schedule": [1, 3]}


def test_organization_change_rejects_bad_settings(backoffice, org):
    change = reverse("admin:accounts_organization_change", args=[org.pk])

    response = backoffice.post(change, org_form(org, platform_fee_bps="20000", default_currency="USD"))

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"platform_fee_bps", "default_currency"}
    assert not AuditEntry.objects.exists()


def test_organization_add_with_a_member(backoffice, operator):
    member = User.objects.create_user("member@example.com", "pw")
    data = {
        "name": "Globex",
        "slug": "globex",
        "email": "",
        "default_currency": "eur",
        "invoice_prefix": "GLOBEX",
        "platform_fee_bps": "400",
        "platform_fee_fixed": "40",
        "payout_hold_days": "7",
        "proration_default": "prorate",
        "payment_processor": "stripe",
        "dunning_schedule": "2,5,7,7",
        "benefit_grace_days": "3",
        "dispute_fee": "1500",
        **management_form("memberships", total=1),
        "memberships-0-user": member.pk,
        "memberships-0-role": "owner",
    }

    response = backoffice.post(reverse("admin:accounts_organization_add"), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    org = Organization.objects.get(slug="globex")
    assert (org.default_currency, org.invoice_next_number) == ("eur", 1)
    assert Membership.objects.get(organization=org).user == member


def test_customer_add_and_change_go_through_the_services(backoffice, org):
    add = reverse("admin:accounts_customer_add")
    assert backoffice.get(add).status_code == 200
    fields = {"billing_address": "{}", "metadata": "{}", "tax_id": "", "tax_id_type": "", "name": "Ann"}

    response = backoffice.post(
        add, {"organization": org.pk, "email": "ANN@Example.com", "external_id": "a-1", **fields}
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    customer = Customer.objects.get()
    assert customer.email == "ann@example.com"  # the service lowercases

    change = reverse("admin:accounts_customer_change", args=[customer.pk])
    response = backoffice.post(
        change, {"email": "ann@example.com", "external_id": "a-2", **fields, "name": "Ann B"}
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert (customer.name, customer.external_id, customer.organization) == ("Ann B", "a-2", org)


def test_customer_external_id_clash_is_a_form_error(backoffice, org):
    services.customer_create(organization=org, email="a@example.com", external_id="dup")
    fields = {"billing_address": "{}", "metadata": "{}", "tax_id": "", "tax_id_type": "", "name": ""}

    response = backoffice.post(
        reverse("admin:accounts_customer_add"),
        {"organization": org.pk, "email": "b@example.com", "external_id": "dup", **fields},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Customer.objects.count() == 1


def test_organizations_cannot_be_deleted_from_the_backoffice(backoffice, org):
    assert backoffice.get(reverse("admin:accounts_organization_delete", args=[org.pk])).status_code == 403
