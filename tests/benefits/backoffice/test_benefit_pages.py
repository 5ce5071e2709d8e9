"""The benefits backoffice: every page renders (a walk over lists, change pages, add steps
and actions), the add form is drawn from the type's settings and shows their errors, an
unconfigured type is refused, the product page sets its benefits in order, the customer page
lists grants with grant, revoke and retry (audited), and the grants list filters failures."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from benefits.models import Benefit, BenefitGrant, ProductBenefit
from core.models import AuditEntry
from core.roles import roles_install

pytestmark = pytest.mark.django_db

BENEFITS = reverse("admin:benefits_benefit_changelist")
GRANTS = reverse("admin:benefits_benefitgrant_changelist")
ADD = reverse("admin:benefits_benefit_add")


def change(model: str, pk) -> str:
    return reverse(f"admin:{model}_change", args=[pk])


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_every_benefit_page_renders(backoffice, held, make_benefit, django_assert_max_num_queries):
    gone = make_benefit("Old note", type="custom")
    backoffice.post(reverse("admin:benefits_benefit_delete_benefit", args=[gone.pk]), {})
    held.error, held.errored_at = "GitHub said 502", held.created_at
    held.save()
    customer = change("accounts_customer", held.customer_id)
    product = change("catalog_product", held.subscription.product_id)
    pages = [
        BENEFITS,
        BENEFITS + "?type=feature_flag",
        BENEFITS + "?state=deleted",
        BENEFITS + "?q=Pro",
        ADD,
        ADD + "?type=feature_flag",
        ADD + "?type=custom",
        ADD + "?type=meter_credit",
        change("benefits_benefit", held.benefit_id),
        change("benefits_benefit", gone.pk),
        reverse("admin:benefits_benefit_delete_benefit", args=[held.benefit_id]),
        GRANTS,
        GRANTS + "?status__exact=granted",
        GRANTS + "?errored=yes",
        GRANTS + "?errored=gave_up",
        GRANTS + "?type=feature_flag",
        GRANTS + f"?customer__id__exact={held.customer_id}",
        GRANTS + "?q=buyer@example.com",
        change("benefits_benefitgrant", held.pk),
        reverse("admin:benefits_benefitgrant_revoke", args=[held.pk]),
        reverse("admin:benefits_benefitgrant_retry", args=[held.pk]),
        reverse("admin:benefits_benefitgrant_grant", args=[held.pk]),
        customer,
        product,
        reverse("admin:catalog_product_set_benefits", args=[held.subscription.product_id]),
    ]
    for page in pages:
        html(backoffice.get(page))
    with django_assert_max_num_queries(12):
        html(backoffice.get(GRANTS))
    with django_assert_max_num_queries(12):
        html(backoffice.get(BENEFITS))


def test_add_starts_with_the_type_and_shows_unconfigured_ones(backoffice, monkeypatch):
    from benefits.strategies.custom import CustomStrategy

    monkeypatch.setattr(CustomStrategy, "is_configured", lambda self: (False, "Set the custom token."))
    page = html(backoffice.get(ADD))
    assert 'data-type="feature_flag"' in page and f"{ADD}?type=feature_flag" in page
    assert "Set the custom token." in page and f"{ADD}?type=custom" not in page
    assert "There is no benefit type" in html(backoffice.get(ADD + "?type=teleport"))


def flag_form(org, **changes) -> dict:
    return {
        "organization": org.pk,
        "description": "Pro reports",
        "prop_key": "pro_reports",
        "prop_metadata": "{}",
        "metadata": "{}",
        **changes,
    }


def test_add_a_benefit_through_its_settings_form(backoffice, org, operator):
    page = html(backoffice.get(ADD + "?type=feature_flag"))
    assert 'name="prop_key"' in page and 'name="prop_metadata"' in page

    response = backoffice.post(ADD + "?type=feature_flag", flag_form(org, prop_metadata='{"seats": 5}'))

    assert response.status_code == 302, response.context["adminform"].form.errors
    benefit = Benefit.objects.get()
    assert (benefit.type, benefit.properties) == (
        "feature_flag",
        {"key": "pro_reports", "metadata": {"seats": 5}},
    )
    entry = AuditEntry.objects.get(action="benefit.create")
    assert entry.actor == operator


def test_settings_errors_show_on_their_fields_and_nothing_is_written(backoffice, org):
    response = backoffice.post(ADD + "?type=feature_flag", flag_form(org, prop_key="Not a key!"))
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"prop_key"}

    response = backoffice.post(
        ADD + "?type=meter_credit",
        {"organization": org.pk, "description": "Credits", "prop_units": "0", "metadata": "{}"},
    )
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"prop_meter", "prop_units"}

    response = backoffice.post(ADD + "?type=feature_flag", flag_form(org, description=""))
    assert "description" in response.context["adminform"].form.errors
    assert not Benefit.objects.exists() and not AuditEntry.objects.exists()


def test_an_unconfigured_type_is_refused_on_save(backoffice, org, monkeypatch):
    from benefits.strategies.custom import CustomStrategy

    monkeypatch.setattr(CustomStrategy, "is_configured", lambda self: (False, "Set the custom token."))
    page = html(backoffice.get(ADD + "?type=custom"))
    assert "not configured" in page

    response = backoffice.post(
        ADD + "?type=custom",
        {"organization": org.pk, "description": "Note", "prop_note": "", "metadata": "{}"},
    )

    assert response.status_code == 200
    assert "Set the custom token." in str(response.context["adminform"].form.errors)
    assert not Benefit.objects.exists()


def test_edit_applies_settings_and_delete_revokes(backoffice, held, django_capture_on_commit_callbacks):
    url = change("benefits_benefit", held.benefit_id)
    page = html(backoffice.get(url))
    assert 'value="pro_reports"' in page and "1 granted now" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = backoffice.post(
            url,
            {"description": "Pro reports v2", "prop_key": "pro_v2", "prop_metadata": "{}", "metadata": "{}"},
        )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Benefit.objects.get(pk=held.benefit_id).properties["key"] == "pro_v2"

    with django_capture_on_commit_callbacks(execute=True):
        response = backoffice.post(
            reverse("admin:benefits_benefit_delete_benefit", args=[held.benefit_id]), {}
        )
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.status == "revoked"
    assert "deleted" in html(backoffice.get(url)) and 'name="prop_key"' not in html(backoffice.get(url))
    assert {"benefit.update", "benefit.delete"} <= set(AuditEntry.objects.values_list("action", flat=True))


def test_product_page_shows_and_sets_its_benefits_in_order(backoffice, make_product, make_benefit, make_org):
    product = make_product("Pro")
    first, second = make_benefit("First flag"), make_benefit("Second note", type="custom")
    make_benefit("Not ours", organization=make_org("Other"))
    page = html(backoffice.get(change("catalog_product", product.pk)))
    assert "This product unlocks no benefit." in page and "Set benefits" in page

    action = reverse("admin:catalog_product_set_benefits", args=[product.pk])
    form = html(backoffice.get(action))
    assert "First flag" in form and "Not ours" not in form
    duplicated = backoffice.post(action, {"benefit_0": str(first.pk), "benefit_1": str(first.pk)})
    assert duplicated.status_code == 200 and "already listed" in duplicated.content.decode()
    assert not ProductBenefit.objects.exists()

    response = backoffice.post(action, {"benefit_0": str(second.pk), "benefit_2": str(first.pk)})

    assert response.status_code == 302
    assert list(ProductBenefit.objects.order_by("position").values_list("benefit_id", flat=True)) == [
        second.pk,
        first.pk,
    ]
    page = html(backoffice.get(change("catalog_product", product.pk)))
    assert page.index("Second note") < page.index("First flag")
    assert AuditEntry.objects.filter(action="product.benefits_set").exists()


def test_customer_page_lists_grants_and_acts_on_them(
    backoffice, held, operator, django_capture_on_commit_callbacks
):
    customer = change("accounts_customer", held.customer_id)
    page = html(backoffice.get(customer))
    assert f'data-grant="{held.pk}"' in page and "Pro reports" in page
    revoke = reverse("admin:benefits_benefitgrant_revoke", args=[held.pk])
    assert f"{revoke}?back=customer" in page
    assert 'data-kind="benefit"' in page  # the timeline's grant line

    refused = backoffice.post(revoke, {"back": "customer", "reason": ""})
    assert refused.status_code == 200 and "reason" in refused.context["form"].errors
    with django_capture_on_commit_callbacks(execute=True):
        response = backoffice.post(revoke, {"back": "customer", "reason": "chargeback abuse"})
    assert (response.status_code, response["Location"]) == (302, customer)
    held.refresh_from_db()
    assert (held.status, held.revoked_by_operator) == ("revoked", True)
    page = html(backoffice.get(customer))
    assert "Revoked Pro reports" in page and "operator: chargeback abuse" in page

    with django_capture_on_commit_callbacks(execute=True):
        backoffice.post(reverse("admin:benefits_benefitgrant_grant", args=[held.pk]), {"back": "customer"})
    held.refresh_from_db()
    assert (held.status, held.revoked_by_operator) == ("granted", False)
    entries = list(AuditEntry.objects.order_by("created_at").values_list("action", "reason", "actor"))
    assert [e for e in entries if e[0].startswith("benefit_grant")] == [
        ("benefit_grant.revoke", "chargeback abuse", operator.pk),
        ("benefit_grant.grant", "", operator.pk),
    ]


def test_grants_list_shows_errors_and_retries_them(backoffice, held):
    BenefitGrant.objects.filter(pk=held.pk).update(
        error="GitHub said 502", errored_at=held.created_at, next_attempt_at=None, attempts=10
    )
    page = html(backoffice.get(GRANTS + "?errored=gave_up"))
    assert "GitHub said 502" in page and "given up" in page
    assert "GitHub said 502" not in html(backoffice.get(GRANTS + "?errored=no"))

    response = backoffice.post(GRANTS, {"action": "retry_selected", "_selected_action": [str(held.pk)]})

    assert response.status_code == 302
    held.refresh_from_db()
    assert held.attempts == 0 or held.error == ""
    assert AuditEntry.objects.filter(action="benefit_grant.retry", object_id=str(held.pk)).exists()


def test_support_acts_on_grants_but_cannot_create_benefits(client, make_staff, held):
    roles_install()
    client.force_login(make_staff("support"))
    assert client.get(GRANTS).status_code == 200
    assert client.get(change("benefits_benefit", held.benefit_id)).status_code == 200
    assert client.get(ADD + "?type=custom").status_code == 403
    assert client.get(reverse("admin:benefits_benefitgrant_revoke", args=[held.pk])).status_code == 200
    assert Group.objects.filter(name="support", permissions__codename="change_benefitgrant").exists()
