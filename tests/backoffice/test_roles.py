import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from accounts import services
from core.roles import ROLES, roles_install

pytestmark = pytest.mark.django_db


def group_permissions() -> dict[str, set[str]]:
    return {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.prefetch_related("permissions__content_type")
    }


def test_roles_install_is_idempotent():
    first = roles_install()
    after_first = group_permissions()
    second = roles_install()

    assert {c.role for c in first if c.created} == {"support", "finance", "admin"}
    assert not any(c.changed for c in second)
    assert group_permissions() == after_first
    assert set(after_first) == set(ROLES)


def test_roles_have_sensible_permissions():
    roles_install()
    perms = group_permissions()

    assert {"accounts.view_customer", "accounts.change_customer", "core.view_auditentry"} <= perms["support"]
    assert "accounts.change_accesstoken" not in perms["support"]
    assert "accounts.change_organization" not in perms["support"]
    assert {"accounts.view_customer", "accounts.change_organization"} <= perms["finance"]
    assert "accounts.change_customer" not in perms["finance"]
    assert {
        "accounts.change_accesstoken",
        "accounts.add_user",
        "core.view_auditentry",
        "django_celery_beat.change_periodictask",
    } <= perms["admin"]
    assert not any(
        p.startswith("auth.") or p.startswith("djstripe.") for p in perms["support"] | perms["finance"]
    )


def test_roles_install_restores_drifted_groups():
    roles_install()
    support = Group.objects.get(name="support")
    support.permissions.clear()

    changes = {c.role: c for c in roles_install()}

    assert "accounts.change_customer" in changes["support"].added
    assert "accounts.change_customer" in group_permissions()["support"]


def test_unknown_explicit_permission_is_an_error():
    with pytest.raises(LookupError):
        roles_install({"support": ("accounts.teleport_customer",)})


def test_setup_roles_command_reports_changes(capsys):
    call_command("setup_roles")
    call_command("setup_roles")

    out = capsys.readouterr().out
    assert "support: created" in out
    assert "support: unchanged (+0 -0)" in out


def test_support_can_view_and_change_customers_but_not_revoke_tokens(client, make_staff, org, make_token):
    customer = services.customer_create(organization=org, email="buyer@example.com", name="Buyer")
    token, _ = make_token(org)
    client.force_login(make_staff("support"))

    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:accounts_customer_changelist")).status_code == 200
    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    assert page.status_code == 200 and 'name="_save"' in page.content.decode()
    assert client.get(reverse("admin:accounts_accesstoken_change", args=[token.pk])).status_code == 200
    revoke = reverse("admin:accounts_accesstoken_revoke", args=[token.pk])
    assert client.post(revoke, {"reason": "nope"}, HTTP_HX_REQUEST="true").status_code == 403
    assert client.get(reverse("admin:accounts_accesstoken_add")).status_code == 403
    # View only elsewhere.
    org_page = client.get(reverse("admin:accounts_organization_change", args=[org.pk])).content.decode()
    assert 'name="_save"' not in org_page


def test_finance_can_change_organization_settings(client, make_staff, org):
    client.force_login(make_staff("finance"))

    org_page = client.get(reverse("admin:accounts_organization_change", args=[org.pk])).content.decode()

    assert 'name="_save"' in org_page
    customers = client.get(reverse("admin:accounts_customer_changelist"))
    assert customers.status_code == 200


def test_staff_without_role_sees_no_models(client, make_staff):
    client.force_login(make_staff())

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert response.context["app_list"] == []
    assert client.get(reverse("admin:accounts_customer_changelist")).status_code == 403
