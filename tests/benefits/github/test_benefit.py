"""Creating a GitHub benefit checks its repository; without a token the type is not configured
(creation refused, the backoffice says so); a customer's github_username is checked in the API
and in the backoffice, and a bad one changes nothing."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import Customer
from benefits import services as benefit_services
from benefits.models import Benefit
from benefits.strategies import strategy_for
from core.errors import InvalidInput

pytestmark = pytest.mark.django_db

PROPS = {"repository_owner": "acme", "repository_name": "pro-sdk", "permission": "push"}


def create(org, **properties):
    return benefit_services.benefit_create(
        organization=org,
        type="github_repository",
        description="Source access",
        properties={**PROPS, **properties},
    )


def test_not_configured_without_a_token(org, settings):
    settings.RECUR_GITHUB_TOKEN = ""
    assert strategy_for("github_repository").is_configured() == (
        False,
        "GitHub is not configured: set RECUR_GITHUB_TOKEN",
    )
    with pytest.raises(InvalidInput) as exc:
        create(org)
    assert (exc.value.field, exc.value.code) == ("type", "not_configured")
    assert str(exc.value.detail) == "GitHub is not configured: set RECUR_GITHUB_TOKEN"
    assert not Benefit.objects.exists()


def test_the_repository_is_checked_on_create(org, fake_github):
    benefit = create(org)
    assert benefit.properties == PROPS
    assert fake_github.calls() == ["GET /repos/acme/pro-sdk"]
    assert strategy_for("github_repository").is_configured() == (True, "")


@pytest.mark.parametrize(
    ("properties", "field", "says"),
    [
        ({"repository_name": "missing"}, "properties.repository_name", "No repository acme/missing"),
        ({"repository_owner": "-acme"}, "properties.repository_owner", ""),
        ({"repository_name": ".."}, "properties.repository_name", ""),
        ({"permission": "owner"}, "properties.permission", ""),
    ],
)
def test_bad_properties_are_field_errors(org, fake_github, properties, field, says):
    with pytest.raises(InvalidInput) as exc:
        create(org, **properties)
    assert exc.value.field == field and says in str(exc.value.detail)
    assert not Benefit.objects.exists()


def test_a_repository_the_token_cannot_administer_is_refused(org, fake_github):
    fake_github.add_repository("acme", "read-only", admin=False)
    with pytest.raises(InvalidInput, match="no admin rights"):
        create(org, repository_name="read-only")


def test_github_down_while_checking_asks_to_try_again(org, fake_github):
    fake_github.fail_next(503)
    with pytest.raises(InvalidInput, match="try again") as exc:
        create(org)
    assert exc.value.field == "properties.repository_name"
    assert create(org).pk  # and it does, once GitHub answers


def test_the_api_checks_the_github_username(api):
    bad = api.post(
        "/v1/customers",
        {"email": "a@example.com", "metadata": {"github_username": "bad--name-"}},
        format="json",
    )
    assert bad.status_code == 400
    (error,) = bad.json()["errors"]
    assert error["field"] == "metadata.github_username" and "GitHub username" in error["detail"]
    assert not Customer.objects.exists()
    ok = api.post(
        "/v1/customers",
        {"email": "a@example.com", "metadata": {"github_username": "octo-cat"}},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["metadata"] == {"github_username": "octo-cat"}


def test_the_backoffice_checks_the_github_username(backoffice, customer):
    form = {
        "email": customer.email,
        "name": customer.name,
        "external_id": "",
        "tax_id": "",
        "tax_id_type": "",
        "metadata": json.dumps({"github_username": "no spaces"}),
        **{f"address_{p}": "" for p in ("line1", "line2", "city", "state", "postal_code", "country")},
    }
    response = backoffice.post(reverse("admin:accounts_customer_change", args=[customer.pk]), form)
    assert response.status_code == 200
    assert "github_username: Not a GitHub username" in str(response.context["adminform"].form.errors)
    customer.refresh_from_db()
    assert customer.metadata == {}


def test_the_dashboard_says_whether_github_is_configured(backoffice, settings, fake_github):
    settings.RECUR_GITHUB_TOKEN = ""
    html = backoffice.get(reverse("admin:index")).content.decode()
    assert "GitHub: not configured" in html and "set RECUR_GITHUB_TOKEN" in html
    settings.RECUR_GITHUB_TOKEN = fake_github.token
    html = backoffice.get(reverse("admin:index")).content.decode()
    assert "GitHub: not configured" not in html and "0 grants failing" in html


def test_the_check_command(fake_github, settings):
    out = StringIO()
    call_command("github_check", "acme/pro-sdk", stdout=out)
    assert "acme/pro-sdk found" in out.getvalue() and "admin rights: yes" in out.getvalue()
    fake_github.add_repository("acme", "read-only", admin=False)
    with pytest.raises(CommandError, match="no admin rights"):
        call_command("github_check", "acme/read-only", stdout=StringIO())
    with pytest.raises(CommandError, match="404"):
        call_command("github_check", "acme/missing", stdout=StringIO())
    settings.RECUR_GITHUB_TOKEN = ""
    with pytest.raises(CommandError, match="not configured"):
        call_command("github_check", "acme/pro-sdk", stdout=StringIO())
