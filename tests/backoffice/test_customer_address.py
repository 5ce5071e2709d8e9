"""The customer page edits the billing address as fields (a country list, the state where
tax needs it); bad values are a form error on the field and change nothing."""

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import Customer
from core.addresses import AddressInvalid, address_clean
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

BLANK_ADDRESS = {
    f"address_{part}": "" for part in ("line1", "line2", "city", "state", "postal_code", "country")
}


def customer_form(customer: Customer, **address) -> dict:
    return {
        "email": customer.email,
        "name": customer.name,
        "external_id": customer.external_id or "",
        "tax_id": "",
        "tax_id_type": "",
        "metadata": "{}",
        **BLANK_ADDRESS,
        **{f"address_{part}": value for part, value in address.items()},
    }


def change_url(customer: Customer) -> str:
    return reverse("admin:accounts_customer_change", args=[customer.pk])


def test_the_page_shows_address_fields_with_a_country_list_not_json(backoffice, customer):
    services.customer_update(
        customer=customer,
        billing_address={"line1": "1 Main St", "city": "Albany", "state": "NY", "country": "US"},
    )
    html = backoffice.get(change_url(customer)).content.decode()
    assert 'name="billing_address"' not in html
    for name in ("address_line1", "address_line2", "address_city", "address_state", "address_postal_code"):
        assert f'name="{name}"' in html
    assert '<select name="address_country"' in html
    assert '<option value="US" selected>United States</option>' in html
    assert 'value="1 Main St"' in html and 'value="Albany"' in html


def test_a_valid_address_is_saved_through_the_service_and_audited(backoffice, customer):
    response = backoffice.post(
        change_url(customer),
        customer_form(customer, line1="10 Rue de Rivoli", city="Paris", postal_code="75001", country="FR"),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert customer.billing_address == {
        "line1": "10 Rue de Rivoli",
        "city": "Paris",
        "postal_code": "75001",
        "country": "FR",
    }
    entry = AuditEntry.objects.get(action="customer.update")
    assert entry.data["after"]["billing_address"]["country"] == "FR"

    # A US state is normalised to its code; emptying every field removes the address.
    backoffice.post(change_url(customer), customer_form(customer, city="Albany", state="us-ny", country="US"))
    customer.refresh_from_db()
    assert customer.billing_address == {"city": "Albany", "state": "NY", "country": "US"}
    backoffice.post(change_url(customer), customer_form(customer))
    customer.refresh_from_db()
    assert customer.billing_address is None


def test_saving_without_touching_the_address_keeps_it(backoffice, customer):
    address = {"line1": "1 Main St", "country": "GB"}
    services.customer_update(customer=customer, billing_address=address)
    response = backoffice.post(
        change_url(customer), {**customer_form(customer, **address), "name": "Renamed"}
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.billing_address) == ("Renamed", address)
    assert "billing_address" not in AuditEntry.objects.get(action="customer.update").data["after"]


@pytest.mark.parametrize(
    "address, field, message",
    [
        ({"country": "XX"}, "address_country", "Select a valid choice"),
        ({"city": "Paris"}, "address_country", "Select the billing country"),
        ({"city": "Albany", "country": "US"}, "address_state", "sales tax depends on the state"),
        ({"country": "CA", "state": "Quebec"}, "address_state", "two-letter province code"),
        ({"country": "FR", "postal_code": "7" * 21}, "address_postal_code", "at most 20 characters"),
    ],
)
def test_bad_address_values_are_a_form_error_naming_the_field_and_change_nothing(
    backoffice, customer, address, field, message
):
    before = {"line1": "1 Main St", "country": "GB"}
    services.customer_update(customer=customer, billing_address=before)
    response = backoffice.post(change_url(customer), {**customer_form(customer, **address), "name": "New"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field], errors
    assert message.lower() in str(errors[field]).lower()
    assert message.split(":")[0].lower() in response.content.decode().lower()
    customer.refresh_from_db()
    assert (customer.name, customer.billing_address) == ("Buyer", before)
    assert not AuditEntry.objects.filter(action="customer.update").exists()


def test_a_new_customer_gets_its_address_from_the_fields(backoffice, org):
    data = {
        "organization": org.pk,
        "email": "new@example.com",
        "name": "",
        "external_id": "",
        "tax_id": "",
        "tax_id_type": "",
        "metadata": "{}",
        **BLANK_ADDRESS,
        "address_country": "DE",
        "address_city": "Berlin",
    }
    response = backoffice.post(reverse("admin:accounts_customer_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Customer.objects.get(email="new@example.com").billing_address == {
        "city": "Berlin",
        "country": "DE",
    }

    bad = backoffice.post(
        reverse("admin:accounts_customer_add"), {**data, "email": "x@example.com", "address_country": ""}
    )
    assert bad.status_code == 200 and "address_country" in bad.context["adminform"].form.errors
    assert not Customer.objects.filter(email="x@example.com").exists()


def test_address_clean_rules():
    assert address_clean({}) is None
    assert address_clean({"country": " gb "}) == {"country": "GB"}
    with pytest.raises(AddressInvalid) as caught:
        address_clean({"line1": "x" * 201, "country": "US"})
    assert set(caught.value.errors) == {"line1", "state"}


def test_an_untouched_address_stored_before_these_rules_does_not_block_saving(backoffice, customer):
    old = {"city": "Austin", "country": "US"}  # no state: written before the form required it
    services.customer_update(customer=customer, billing_address=old)
    response = backoffice.post(change_url(customer), {**customer_form(customer, **old), "name": "Renamed"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.billing_address) == ("Renamed", old)

    touched = backoffice.post(change_url(customer), customer_form(customer, city="Dallas", country="US"))
    assert list(touched.context["adminform"].form.errors) == ["address_state"]
