import pytest

pytestmark = pytest.mark.django_db


def test_read_and_update_settings(api, org):
    body = api.get("/v1/organization").json()
    assert body["id"] == str(org.id)
    assert body["dunning_schedule"] == [2, 5, 7, 7]
    assert body["payout_hold_days"] == 7

    response = api.patch(
        "/v1/organization",
        {"default_currency": "EUR", "dunning_schedule": [1, 3], "proration_default": "invoice"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    org.refresh_from_db()
    assert (org.default_currency, org.dunning_schedule, org.proration_default) == ("eur", [1, 3], "invoice")


def test_platform_fee_is_not_the_merchants_to_change(api, org):
    api.patch("/v1/organization", {"platform_fee_bps": 0}, format="json")
    org.refresh_from_db()
    assert org.platform_fee_bps == 400


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"default_currency": "xyz"}, "default_currency"),
        ({"dunning_schedule": []}, "dunning_schedule"),
        ({"dunning_schedule": [0]}, "dunning_schedule[0]"),
        ({"proration_default": "sometimes"}, "proration_default"),
        ({"payout_hold_days": -1}, "payout_hold_days"),
        ({"invoice_prefix": "bad prefix!"}, "invoice_prefix"),
        ({"payout_hold_days": "many"}, "payout_hold_days"),
    ],
)
def test_invalid_settings_change_nothing(api, org, payload, field):
    before = api.get("/v1/organization").json()
    response = api.patch("/v1/organization", payload, format="json")
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["errors"]]
    assert api.get("/v1/organization").json() == before


def test_invoice_prefix_taken_by_another_organization(api, make_org):
    other = make_org("Other", invoice_prefix="TAKEN")
    response = api.patch("/v1/organization", {"invoice_prefix": other.invoice_prefix}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "invoice_prefix"
