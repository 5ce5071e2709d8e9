from datetime import timedelta

import pytest

from billing.catalog import services
from billing.catalog.models import Discount
from core import clock

pytestmark = pytest.mark.django_db


def create(api, **body):
    body = {"name": "Launch", "type": "percentage", "basis_points": 2500, **body}
    return api.post("/v1/discounts", body, format="json")


def errors(response) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.content
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


def test_create_get_update_delete(api, org, product):
    ends = (clock.now() + timedelta(days=30)).replace(microsecond=0)
    created = create(
        api,
        code="LAUNCH",
        duration="repeating",
        duration_in_months=3,
        ends_at=ends.isoformat(),
        max_redemptions=100,
        product_ids=[str(product.pk)],
        metadata={"campaign": "spring"},
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["code"] == "LAUNCH"
    assert (body["basis_points"], body["amounts"], body["duration_in_months"]) == (2500, {}, 3)
    assert body["product_ids"] == [str(product.pk)]
    assert (body["redemptions_count"], body["is_archived"]) == (0, False)
    discount_id = body["id"]
    assert Discount.objects.get(pk=discount_id).organization == org
    assert api.get(f"/v1/discounts/{discount_id}").json()["ends_at"] == body["ends_at"]

    patched = api.patch(
        f"/v1/discounts/{discount_id}",
        {"name": "Spring", "max_redemptions": 50, "product_ids": []},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["name"], patched.json()["max_redemptions"], patched.json()["product_ids"]) == (
        "Spring",
        50,
        [],
    )

    archived = api.post(f"/v1/discounts/{discount_id}/archive")
    assert archived.status_code == 200 and archived.json()["is_archived"] is True
    assert api.post(f"/v1/discounts/{discount_id}/unarchive").json()["is_archived"] is False
    assert api.delete(f"/v1/discounts/{discount_id}").status_code == 204
    assert api.get(f"/v1/discounts/{discount_id}").status_code == 404


def test_fixed_discount(api):
    response = create(
        api, type="fixed", basis_points=None, amounts={"USD": 500, "eur": 450}, duration="forever"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["amounts"] == {"usd": 500, "eur": 450}
    assert response.json()["basis_points"] is None


def test_list_filters_and_counts(api, product, make_checkout):
    create(api, name="A", code="Alpha")
    beta = create(api, name="B", code="beta", max_redemptions=2).json()
    services.discount_reserve(
        discount=Discount.objects.get(pk=beta["id"]), checkout=make_checkout(product), customer_email="a@x.io"
    )
    api.post(f"/v1/discounts/{beta['id']}/archive")

    def codes(**params):
        response = api.get("/v1/discounts", params)
        assert response.status_code == 200, response.content
        return [(d["code"], d["redemptions_count"]) for d in response.json()["results"]]

    assert codes() == [("beta", 1), ("Alpha", 0)]
    assert codes(code="ALPHA") == [("Alpha", 0)]
    assert codes(is_archived="true") == [("beta", 1)]
    assert codes(query="b") == [("beta", 1)]
    assert codes(code="nothing") == []
    assert api.get("/v1/discounts", {"is_archived": "maybe"}).status_code == 400
    assert api.get("/v1/discounts", {"code": "x" * 65}).status_code == 400


def test_used_discount_cannot_be_deleted_nor_limited_below_its_uses(api, product, make_checkout):
    body = create(api, code="USED", max_redemptions=5).json()
    discount = Discount.objects.get(pk=body["id"])
    for i in range(2):
        services.discount_reserve(
            discount=discount, checkout=make_checkout(product), customer_email=f"{i}@x.io"
        )

    response = api.delete(f"/v1/discounts/{body['id']}")
    assert (response.status_code, response.json()["code"]) == (409, "discount_redeemed")
    assert ("max_redemptions", "below_redemptions") in errors(
        api.patch(f"/v1/discounts/{body['id']}", {"max_redemptions": 1}, format="json")
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": ""}, ("name", "blank")),
        ({"name": "x" * 201}, ("name", "max_length")),
        ({"type": "bogo"}, ("type", "invalid_choice")),
        ({"basis_points": 10_001}, ("basis_points", "max_value")),
        ({"basis_points": 0}, ("basis_points", "min_value")),
        ({"basis_points": "half"}, ("basis_points", "invalid")),
        ({"basis_points": None}, ("basis_points", "required")),
        ({"duration": "repeating"}, ("duration_in_months", "required")),
        ({"duration": "weekly"}, ("duration", "invalid_choice")),
        ({"code": "ab"}, ("code", "invalid_code")),
        ({"code": "x" * 65}, ("code", "max_length")),
        ({"code": "has space"}, ("code", "invalid_code")),
        ({"type": "fixed", "basis_points": None}, ("amounts", "required")),
        ({"type": "fixed", "basis_points": None, "amounts": {"zzz": 5}}, ("amounts", "unsupported_currency")),
        ({"type": "fixed", "basis_points": None, "amounts": {"usd": 0}}, ("amounts.usd", "min_value")),
        ({"type": "fixed", "basis_points": None, "amounts": {"usd": "five"}}, ("amounts.usd", "invalid")),
        ({"type": "fixed", "basis_points": None, "amounts": [500]}, ("amounts", "not_a_dict")),
        ({"max_redemptions": 0}, ("max_redemptions", "min_value")),
        ({"max_redemptions": 2**40}, ("max_redemptions", "max_value")),
        ({"starts_at": "yesterday"}, ("starts_at", "invalid")),
        (
            {"starts_at": "2100-01-02T00:00:00Z", "ends_at": "2100-01-01T00:00:00Z"},
            ("ends_at", "ends_before_start"),
        ),
        ({"ends_at": "2000-01-01T00:00:00Z"}, ("ends_at", "ends_in_past")),
        ({"product_ids": ["00000000-0000-0000-0000-000000000000"]}, ("product_ids", "unknown_product")),
        ({"product_ids": ["nope"]}, ("product_ids[0]", "invalid")),
        ({"product_ids": "nope"}, ("product_ids", "not_a_list")),
        ({"metadata": {"x" * 41: "v"}}, ("metadata", "invalid_key")),
    ],
)
def test_bad_input_is_a_field_error(api, body, expected):
    assert expected in errors(create(api, **body))
    assert not Discount.objects.exists()


def test_duplicate_code_is_a_field_error(api):
    assert create(api, code="DUP").status_code == 201
    assert ("code", "unique") in errors(create(api, code="dup"))
    other = create(api, code="OTHER").json()
    assert ("code", "unique") in errors(
        api.patch(f"/v1/discounts/{other['id']}", {"code": "Dup"}, format="json")
    )


def test_another_organizations_product_is_unknown(api, make_org, make_product):
    theirs = make_product(make_org("Other"), name="Theirs")
    response = create(api, product_ids=[str(theirs.pk)])
    assert ("product_ids", "unknown_product") in errors(response)
    assert str(theirs.pk) not in response.content.decode()


def test_patch_refuses_immutable_fields(api):
    body = create(api).json()
    response = api.patch(
        f"/v1/discounts/{body['id']}", {"basis_points": 5000, "type": "fixed"}, format="json"
    )
    assert set(errors(response)) == {("basis_points", "immutable"), ("type", "immutable")}
    assert Discount.objects.get().basis_points == 2500


def test_scopes(make_api, org):
    reader = make_api(org, scopes=["discounts:read"])
    assert reader.get("/v1/discounts").status_code == 200
    assert create(reader).status_code == 403
    assert make_api(org, scopes=["products:write"]).get("/v1/discounts").status_code == 403
