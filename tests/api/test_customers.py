import pytest

from accounts.models import Customer

pytestmark = pytest.mark.django_db


def test_create_get_update_delete(api, org):
    created = api.post(
        "/v1/customers",
        {
            "email": "Ada@Example.com",
            "name": "Ada",
            "external_id": "u_1",
            "billing_address": {
                "line1": "1 Main St",
                "city": "Paris",
                "postal_code": "75001",
                "country": "fr",
            },
            "tax_id": "FR40303265045",
            "tax_id_type": "eu_vat",
            "metadata": {"plan": "pro"},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["email"] == "ada@example.com"
    assert body["billing_address"]["country"] == "FR"
    customer_id = body["id"]

    assert api.get(f"/v1/customers/{customer_id}").json()["external_id"] == "u_1"
    patched = api.patch(f"/v1/customers/{customer_id}", {"name": "Ada L."}, format="json")
    assert patched.status_code == 200
    assert Customer.objects.get(pk=customer_id).name == "Ada L."

    assert api.delete(f"/v1/customers/{customer_id}").status_code == 204
    assert not Customer.objects.filter(pk=customer_id).exists()
    assert api.get(f"/v1/customers/{customer_id}").status_code == 404


def test_upsert_by_external_id_creates_then_updates(api, org):
    first = api.put(
        "/v1/customers/external/crm-42", {"email": "bob@example.com", "name": "Bob"}, format="json"
    )
    assert first.status_code == 201
    second = api.put("/v1/customers/external/crm-42", {"name": "Robert"}, format="json")
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["email"] == "bob@example.com"
    assert Customer.objects.filter(organization=org, external_id="crm-42").count() == 1
    assert api.get("/v1/customers/external/crm-42").json()["name"] == "Robert"
    assert api.delete("/v1/customers/external/crm-42").status_code == 204
    assert api.get("/v1/customers/external/crm-42").status_code == 404


def test_upsert_without_email_for_new_customer_is_a_field_error(api):
    response = api.put("/v1/customers/external/new-one", {"name": "No mail"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "email", "code": "required", "detail": response.json()["detail"]}
    ]
    assert not Customer.objects.exists()


def test_duplicate_external_id_on_create_is_refused(api, org):
    api.post("/v1/customers", {"email": "a@example.com", "external_id": "dup"}, format="json")
    response = api.post("/v1/customers", {"email": "b@example.com", "external_id": "dup"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "external_id"
    assert Customer.objects.filter(organization=org).count() == 1


def test_same_external_id_in_two_organizations_is_fine(api, make_org, make_api):
    other = make_api(make_org("Other"))
    assert api.put("/v1/customers/external/x", {"email": "a@example.com"}, format="json").status_code == 201
    assert other.put("/v1/customers/external/x", {"email": "a@example.com"}, format="json").status_code == 201


def test_list_filters_search_and_cursor_pagination(api, org):
    for n in range(25):
        api.post("/v1/customers", {"email": f"user{n}@example.com", "name": f"User {n}"}, format="json")
    api.post("/v1/customers", {"email": "Special@Example.com", "name": "Zed"}, format="json")

    assert [
        c["name"] for c in api.get("/v1/customers", {"email": "special@example.com"}).json()["results"]
    ] == ["Zed"]
    assert len(api.get("/v1/customers", {"query": "user1"}).json()["results"]) == 11  # user1, user10..19
    # Filters combine, and each one given is checked, whichever others come with it.
    newest = api.get("/v1/customers", {"limit": 1}).json()["results"][0]
    both = api.get("/v1/customers", {"query": "user1", "created_before": newest["created_at"]})
    assert len(both.json()["results"]) == 11
    assert (
        api.get("/v1/customers", {"query": "zed", "created_before": newest["created_at"]}).json()["results"]
        == []
    )
    bad = api.get("/v1/customers", {"query": "user1", "created_after": "yesterday"})
    assert bad.status_code == 400
    assert [e["field"] for e in bad.json()["errors"]] == ["created_after"]

    seen, url = [], "/v1/customers?limit=10"
    while url:
        page = api.get(url).json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
    assert len(seen) == 26 == len(set(seen))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.com", "name": "x" * 256}, "name"),
        ({"email": "a@example.com", "external_id": "x" * 256}, "external_id"),
        ({"email": "a@example.com", "billing_address": {"country": "ZZ"}}, "billing_address.country"),
        ({"email": "a@example.com", "billing_address": "Paris"}, "billing_address.non_field_errors"),
        ({"email": "a@example.com", "metadata": {"k" * 41: "v"}}, "metadata"),
        ({"email": "a@example.com", "metadata": "nope"}, "metadata"),
        ({"email": "a@example.com", "tax_id": "123"}, "tax_id_type"),
        ({"email": ["a@example.com"]}, "email"),
        ({}, "email"),
    ],
)
def test_invalid_fields_are_400_with_one_entry_per_field(api, payload, field):
    response = api.post("/v1/customers", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "invalid_request_error"
    assert body["code"] == "validation_error"
    assert field.split(".non_field_errors")[0] in [e["field"] for e in body["errors"]]
    assert not Customer.objects.exists()


def test_customer_with_payments_cannot_be_deleted(api, org, make_payment, customer):
    make_payment()
    response = api.delete(f"/v1/customers/{customer.pk}")
    assert response.status_code == 409
    assert response.json()["code"] == "customer_in_use"
    assert Customer.objects.filter(pk=customer.pk).exists()
