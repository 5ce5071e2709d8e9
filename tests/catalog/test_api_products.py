import pytest

from billing.catalog.models import Price, Product

pytestmark = pytest.mark.django_db

FIXED = {"currency": "usd", "type": "fixed", "amount": 1900}


def create(api, **body):
    body = {"name": "Ebook", "prices": [FIXED], **body}
    return api.post("/v1/products", body, format="json")


def errors(response) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.content
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


def test_create_get_update_delete(api, org):
    created = create(
        api,
        name="Team plan",
        description="For teams",
        recurring_interval="month",
        metadata={"plan": "team"},
        prices=[
            {"currency": "USD", "type": "fixed", "amount": 4900},
            {
                "currency": "eur",
                "type": "seat_based",
                "seat_tier_mode": "volume",
                "seat_tiers": [{"up_to": 10, "unit_amount": 800}, {"up_to": None, "unit_amount": 600}],
                "minimum_seats": 2,
            },
        ],
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["is_recurring"], body["recurring_interval"], body["recurring_interval_count"]) == (
        True,
        "month",
        1,
    )
    assert body["metadata"] == {"plan": "team"}
    prices = {p["currency"]: p for p in body["prices"]}
    assert prices["usd"]["amount"] == 4900 and prices["usd"]["seat_tier_mode"] is None
    assert prices["eur"]["seat_tiers"][1] == {"up_to": None, "unit_amount": 600, "flat_amount": 0}
    assert prices["eur"]["is_archived"] is False
    product_id = body["id"]
    assert Product.objects.get(pk=product_id).organization == org

    fetched = api.get(f"/v1/products/{product_id}").json()
    assert fetched == body | {"updated_at": fetched["updated_at"]}

    usd_id = prices["usd"]["id"]
    patched = api.patch(
        f"/v1/products/{product_id}",
        {"name": "Team", "prices": [{"id": usd_id, "amount": 5900}, {"id": prices["eur"]["id"]}]},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    new_prices = {p["currency"]: p for p in patched.json()["prices"]}
    assert patched.json()["name"] == "Team"
    assert new_prices["usd"]["amount"] == 5900 and new_prices["usd"]["id"] != usd_id
    assert new_prices["eur"]["id"] == prices["eur"]["id"]
    assert Price.objects.get(pk=usd_id).is_archived

    assert api.delete(f"/v1/products/{product_id}").status_code == 204
    assert api.get(f"/v1/products/{product_id}").status_code == 404


def test_list_filters(api):
    ebook = create(api, name="Ebook").json()
    plan = create(api, name="Monthly plan", recurring_interval="month").json()
    api.post(f"/v1/products/{ebook['id']}/archive")

    def names(**params):
        response = api.get("/v1/products", params)
        assert response.status_code == 200, response.content
        return [p["name"] for p in response.json()["results"]]

    assert names() == ["Monthly plan", "Ebook"]
    assert names(is_archived="true") == ["Ebook"]
    assert names(is_archived="false") == ["Monthly plan"]
    assert names(is_recurring="true") == ["Monthly plan"]
    assert names(is_recurring="false") == ["Ebook"]
    assert names(query="month") == ["Monthly plan"]
    assert api.get("/v1/products", {"is_recurring": "maybe"}).status_code == 400
    assert plan["prices"][0]["amount"] == 1900


def test_list_has_bounded_queries(api, django_assert_max_num_queries):
    for i in range(15):
        create(api, name=f"P{i}", prices=[FIXED, {"currency": "eur", "type": "free"}])
    with django_assert_max_num_queries(8):
        response = api.get("/v1/products", {"limit": 50})
    assert len(response.json()["results"]) == 15
    assert all(len(p["prices"]) == 2 for p in response.json()["results"])


def test_archive_and_unarchive(api):
    product_id = create(api).json()["id"]
    archived = api.post(f"/v1/products/{product_id}/archive")
    assert archived.status_code == 200 and archived.json()["is_archived"] is True
    assert api.post(f"/v1/products/{product_id}/unarchive").json()["is_archived"] is False


def test_sold_product_cannot_be_deleted_or_change_interval(api, make_subscription):
    body = create(api, recurring_interval="month").json()
    make_subscription(Product.objects.get(pk=body["id"]))

    response = api.delete(f"/v1/products/{body['id']}")
    assert response.status_code == 409
    assert response.json()["code"] == "product_sold"
    response = api.patch(f"/v1/products/{body['id']}", {"recurring_interval": "year"}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "recurring_interval"
    assert api.patch(f"/v1/products/{body['id']}", {"name": "ok"}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": None}, ("name", "null")),
        ({"name": "x" * 201}, ("name", "max_length")),
        ({"name": ["a"]}, ("name", "invalid")),
        ({"description": "x" * 10_001}, ("description", "max_length")),
        ({"recurring_interval": "fortnight"}, ("recurring_interval", "invalid_choice")),
        (
            {"recurring_interval": "month", "recurring_interval_count": 0},
            ("recurring_interval_count", "min_value"),
        ),
        (
            {"recurring_interval": "month", "recurring_interval_count": 40},
            ("recurring_interval_count", "out_of_range"),
        ),
        ({"recurring_interval_count": "lots"}, ("recurring_interval_count", "invalid")),
        ({"metadata": {"k": "v" * 501}}, ("metadata.k", "max_length")),
        ({"metadata": "plain"}, ("metadata", "not_a_dict")),
        ({"prices": []}, ("prices", "min_length")),
        ({"prices": "usd"}, ("prices", "not_a_list")),
        ({"prices": [{"type": "free"}]}, ("prices[0].currency", "required")),
        ({"prices": [{"currency": "usd"}]}, ("prices[0].type", "required")),
        ({"prices": [{"currency": "zzz", "type": "free"}]}, ("prices[0].currency", "unsupported_currency")),
        ({"prices": [{"currency": "dollars", "type": "free"}]}, ("prices[0].currency", "max_length")),
        ({"prices": [{"currency": "usd", "type": "metered"}]}, ("prices[0].type", "invalid_choice")),
        (
            {"prices": [{"currency": "usd", "type": "fixed", "amount": 10}]},
            ("prices[0].amount", "below_minimum_charge"),
        ),
        ({"prices": [{"currency": "usd", "type": "fixed", "amount": -5}]}, ("prices[0].amount", "min_value")),
        (
            {"prices": [{"currency": "usd", "type": "fixed", "amount": 10**13}]},
            ("prices[0].amount", "max_value"),
        ),
        (
            {"prices": [{"currency": "usd", "type": "fixed", "amount": 10**30}]},
            ("prices[0].amount", "max_value"),
        ),
        (
            {"prices": [{"currency": "usd", "type": "fixed", "amount": "12.5"}]},
            ("prices[0].amount", "invalid"),
        ),
        ({"prices": [{"currency": "usd", "type": "fixed", "amount": True}]}, ("prices[0].amount", "invalid")),
        (
            {"prices": [FIXED, {"currency": "usd", "type": "free"}]},
            ("prices[1].currency", "duplicate_currency"),
        ),
        (
            {"prices": [{"currency": "usd", "type": "custom", "minimum_amount": 500, "preset_amount": 100}]},
            ("prices[0].preset_amount", "amount_out_of_range"),
        ),
        (
            {
                "prices": [
                    {
                        "currency": "usd",
                        "type": "seat_based",
                        "seat_tier_mode": "volume",
                        "seat_tiers": [{"up_to": None, "unit_amount": 500}],
                        "minimum_seats": 5,
                        "maximum_seats": 2,
                    }
                ]
            },
            ("prices[0].maximum_seats", "maximum_below_minimum"),
        ),
        (
            {
                "prices": [
                    {"currency": "usd", "type": "seat_based", "seat_tier_mode": "volume", "seat_tiers": [{}]}
                ]
            },
            ("prices[0].seat_tiers[0].unit_amount", "required"),
        ),
        (
            {
                "prices": [
                    {"currency": "usd", "type": "seat_based", "seat_tier_mode": "volume", "seat_tiers": "x"}
                ]
            },
            ("prices[0].seat_tiers", "not_a_list"),
        ),
        ({"prices": [{"id": "00000000-0000-0000-0000-000000000000"}]}, ("prices[0].id", "not_allowed")),
    ],
)
def test_bad_input_is_a_field_error(api, body, expected):
    response = create(api, **body)
    assert expected in errors(response)
    assert not Product.objects.exists()


def test_body_that_is_not_an_object(api):
    response = api.post("/v1/products", ["a"], format="json")
    assert response.status_code == 400
    response = api.post("/v1/products", "garbage", content_type="application/json")
    assert response.status_code == 400


def test_patch_bad_prices(api):
    body = create(api).json()
    url = f"/v1/products/{body['id']}"
    assert ("prices[0].id", "unknown_price") in errors(
        api.patch(url, {"prices": [{"id": "00000000-0000-0000-0000-000000000000"}]}, format="json")
    )
    assert ("prices[0].id", "invalid") in errors(api.patch(url, {"prices": [{"id": "nope"}]}, format="json"))
    assert ("prices", "min_length") in errors(api.patch(url, {"prices": []}, format="json"))
    assert [p["id"] for p in api.get(url).json()["prices"]] == [body["prices"][0]["id"]]


def test_unknown_product_is_404(api):
    for url in ("/v1/products/00000000-0000-0000-0000-000000000000", "/v1/products/not-an-id"):
        assert api.get(url).status_code == 404
        assert api.patch(url, {"name": "x"}, format="json").status_code == 404
        assert api.post(f"{url}/archive").status_code == 404


def test_scopes(make_api, org):
    reader = make_api(org, scopes=["products:read"])
    assert reader.get("/v1/products").status_code == 200
    assert create(reader).status_code == 403
    assert make_api(org, scopes=["customers:write"]).get("/v1/products").status_code == 403


def test_create_is_idempotent(api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "product-1"}
    first = api.post("/v1/products", {"name": "Once", "prices": [FIXED]}, format="json", **headers)
    second = api.post("/v1/products", {"name": "Once", "prices": [FIXED]}, format="json", **headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert Product.objects.count() == 1
