"""/v1/benefits, /v1/benefit-types, /v1/products/{id}/benefits and /v1/benefit-grants:
CRUD through the services, every bad field named (and nothing written), grant filters, and
the operator actions audited with the token as actor."""

import uuid

import pytest

from benefits.models import Benefit, BenefitGrant, ProductBenefit
from core.events.models import Event
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def fields(response) -> dict[str, str]:
    return {e["field"]: e["code"] for e in response.json()["errors"]}


def test_create_get_update_list_delete(api, org, make_product):
    response = api.post(
        "/v1/benefits",
        {
            "type": "feature_flag",
            "description": "Pro reports",
            "properties": {"key": "pro_reports"},
            "metadata": {"tier": "pro"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["type"], body["properties"], body["metadata"], body["product_ids"]) == (
        "feature_flag",
        {"key": "pro_reports", "metadata": {}},
        {"tier": "pro"},
        [],
    )
    benefit_id = body["id"]
    assert api.get(f"/v1/benefits/{benefit_id}").json()["description"] == "Pro reports"

    changed = api.patch(
        f"/v1/benefits/{benefit_id}",
        {"description": "Pro reports (v2)", "properties": {"key": "pro_reports_v2"}},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["properties"]["key"] == "pro_reports_v2"

    api.post(
        "/v1/benefits",
        {"type": "custom", "description": "A note", "properties": {"note": "Hi"}},
        format="json",
    )
    assert [b["type"] for b in api.get("/v1/benefits").json()["results"]] == ["custom", "feature_flag"]
    assert [b["type"] for b in api.get("/v1/benefits", {"type": "custom"}).json()["results"]] == ["custom"]

    product = make_product("Pro")
    assert (
        api.post(
            f"/v1/products/{product.pk}/benefits", {"benefit_ids": [benefit_id]}, format="json"
        ).status_code
        == 200
    )
    by_product = api.get("/v1/benefits", {"product_id": str(product.pk)}).json()["results"]
    assert [b["id"] for b in by_product] == [benefit_id]
    assert by_product[0]["product_ids"] == [str(product.pk)]

    assert api.delete(f"/v1/benefits/{benefit_id}").status_code == 204
    assert api.get(f"/v1/benefits/{benefit_id}").status_code == 404
    assert Benefit.objects.get(pk=benefit_id).deleted_at is not None
    assert not ProductBenefit.objects.filter(benefit_id=benefit_id).exists()
    assert list(Event.objects.filter(object_id=benefit_id).order_by("id").values_list("type", flat=True)) == [
        "benefit.created",
        "benefit.updated",
        "benefit.deleted",
    ]
    actions = set(AuditEntry.objects.values_list("action", "actor_kind"))
    assert {("benefit.create", "token"), ("benefit.update", "token"), ("benefit.delete", "token")} <= actions


@pytest.mark.parametrize(
    "body, field, code",
    [
        ({"type": "teleport", "description": "x"}, "type", "unknown_type"),
        ({"description": "x"}, "type", "required"),
        ({"type": "custom"}, "description", "required"),
        ({"type": "custom", "description": ""}, "description", "blank"),
        ({"type": "custom", "description": "x" * 501}, "description", "max_length"),
        ({"type": "feature_flag", "description": "x"}, "properties.key", "required"),
        (
            {"type": "feature_flag", "description": "x", "properties": {"key": "Bad Key!"}},
            "properties.key",
            "invalid",
        ),
        (
            {"type": "meter_credit", "description": "x", "properties": {"meter": "api", "units": 0}},
            "properties.units",
            "min_value",
        ),
        ({"type": "custom", "description": "x", "properties": []}, "properties", "not_a_dict"),
        ({"type": "custom", "description": "x", "metadata": {"k" * 41: "v"}}, "metadata", "invalid_key"),
    ],
)
def test_create_refuses_each_bad_field(api, body, field, code):
    response = api.post("/v1/benefits", body, format="json")

    assert response.status_code == 400, response.json()
    assert fields(response).get(field) == code, response.json()
    assert not Benefit.objects.exists()
    assert not AuditEntry.objects.exists()


def test_every_bad_setting_is_named_at_once(api):
    response = api.post(
        "/v1/benefits",
        {"type": "meter_credit", "description": "Credits", "properties": {"units": -1, "rollover": "maybe"}},
        format="json",
    )
    assert response.status_code == 400
    assert {"properties.meter", "properties.units", "properties.rollover"} <= set(fields(response))


def test_an_unconfigured_type_is_refused(api, monkeypatch):
    from benefits.strategies.custom import CustomStrategy

    monkeypatch.setattr(CustomStrategy, "is_configured", lambda self: (False, "No credentials."))
    response = api.post("/v1/benefits", {"type": "custom", "description": "x"}, format="json")

    assert response.status_code == 400
    assert fields(response) == {"type": "not_configured"}
    types = {t["type"]: t for t in api.get("/v1/benefit-types").json()["types"]}
    assert (types["custom"]["configured"], types["custom"]["not_configured_reason"]) == (
        False,
        "No credentials.",
    )


def test_update_refuses_bad_fields_and_the_type(api, make_benefit):
    benefit = make_benefit()
    url = f"/v1/benefits/{benefit.pk}"
    for body, field in [
        ({"type": "custom"}, "type"),
        ({"properties": {"key": ""}}, "properties.key"),
        ({"description": ""}, "description"),
        ({"metadata": "x"}, "metadata"),
    ]:
        response = api.patch(url, body, format="json")
        assert response.status_code == 400, (body, response.json())
        assert field in fields(response), (body, response.json())
    benefit.refresh_from_db()
    assert (benefit.type, benefit.properties["key"], benefit.description) == (
        "feature_flag",
        "pro_reports",
        "Pro reports",
    )


def test_benefit_types_describe_their_properties(api):
    response = api.get("/v1/benefit-types")

    assert response.status_code == 200
    types = {t["type"]: t for t in response.json()["types"]}
    assert {"custom", "feature_flag", "meter_credit"} <= set(types)
    flag = types["feature_flag"]
    assert flag["label"] == "Feature flag" and flag["configured"] is True
    assert flag["properties_schema"]["required"] == ["key"]
    assert flag["properties_schema"]["properties"]["key"]["pattern"].startswith("^[a-z0-9]")
    assert api.get("/v1/benefit-types", {"type": "x"}).status_code == 400


def test_product_benefits_in_order_and_bad_ids(api, org, make_org, make_product, make_benefit):
    product = make_product("Pro")
    first, second = make_benefit("First"), make_benefit("Second", type="custom")
    other = make_benefit("Theirs", organization=make_org("Other"))
    deleted = make_benefit("Deleted", type="custom")
    api.delete(f"/v1/benefits/{deleted.pk}")
    url = f"/v1/products/{product.pk}/benefits"

    response = api.put(url, {"benefit_ids": [str(second.pk), str(first.pk)]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["benefit_ids"] == [str(second.pk), str(first.pk)]
    assert [b["description"] for b in api.get(url).json()["benefits"]] == ["Second", "First"]

    for ids, field, code in [
        ([str(other.pk)], "benefit_ids[0]", "not_found"),
        ([str(first.pk), str(deleted.pk)], "benefit_ids[1]", "not_found"),
        ([str(uuid.uuid4())], "benefit_ids[0]", "not_found"),
        (["nope"], "benefit_ids[0]", "invalid"),
        ([str(first.pk), str(first.pk)], "benefit_ids", "invalid"),
        ("x", "benefit_ids", "not_a_list"),
    ]:
        response = api.post(url, {"benefit_ids": ids}, format="json")
        assert response.status_code == 400, (ids, response.json())
        assert fields(response).get(field) == code, (ids, response.json())
    assert list(ProductBenefit.objects.filter(product=product).values_list("benefit_id", flat=True)) == [
        second.pk,
        first.pk,
    ]
    assert (
        api.post(f"/v1/products/{uuid.uuid4()}/benefits", {"benefit_ids": []}, format="json").status_code
        == 404
    )
    their_product = make_product("Theirs", organization=other.organization)
    assert api.get(f"/v1/products/{their_product.pk}/benefits").status_code == 404

    assert api.post(url, {"benefit_ids": []}, format="json").json()["benefit_ids"] == []


def test_another_organizations_benefit_is_a_404(api, make_org, make_benefit):
    theirs = make_benefit(organization=make_org("Other"))
    assert api.get(f"/v1/benefits/{theirs.pk}").status_code == 404
    assert api.patch(f"/v1/benefits/{theirs.pk}", {"description": "mine"}, format="json").status_code == 404
    assert api.delete(f"/v1/benefits/{theirs.pk}").status_code == 404
    assert api.get("/v1/benefits").json()["results"] == []


def test_read_scope_reads_and_cannot_write(org, make_api, make_benefit):
    reader = make_api(org, scopes=["benefits:read"])
    benefit = make_benefit()
    assert reader.get("/v1/benefits").status_code == 200
    assert reader.get("/v1/benefit-grants").status_code == 200
    response = reader.post("/v1/benefits", {"type": "custom", "description": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
    assert reader.delete(f"/v1/benefits/{benefit.pk}").status_code == 403
    assert make_api(org, scopes=["products:write"]).get("/v1/benefits").status_code == 403


# --- grants ---------------------------------------------------------------------------------


def test_grants_list_filters_and_get(api, held, make_benefit):
    url = "/v1/benefit-grants"
    listed = api.get(url).json()["results"]
    assert [g["id"] for g in listed] == [str(held.pk)]
    assert listed[0]["status"] == "granted" and listed[0]["benefit_type"] == "feature_flag"
    for name, value, count in [
        ("customer_id", held.customer_id, 1),
        ("customer_id", uuid.uuid4(), 0),
        ("benefit_id", held.benefit_id, 1),
        ("subscription_id", held.subscription_id, 1),
        ("order_id", uuid.uuid4(), 0),
        ("status", "granted", 1),
        ("status", "revoked", 0),
        ("errored", "true", 0),
        ("errored", "false", 1),
    ]:
        response = api.get(url, {name: str(value)})
        assert response.status_code == 200, (name, response.json())
        assert len(response.json()["results"]) == count, (name, value)
    BenefitGrant.objects.filter(pk=held.pk).update(error="boom", errored_at=held.created_at)
    assert len(api.get(url, {"errored": "true"}).json()["results"]) == 1
    for name, value in [("status", "lost"), ("errored", "maybe"), ("customer_id", "x"), ("nope", "1")]:
        response = api.get(url, {name: value})
        assert response.status_code == 400 and name in fields(response)
    assert api.get(f"{url}/{held.pk}").json()["subscription_id"] == str(held.subscription_id)
    assert api.get(f"{url}/{uuid.uuid4()}").status_code == 404


def test_revoke_grant_and_retry_are_audited(api, held, django_capture_on_commit_callbacks):
    url = f"/v1/benefit-grants/{held.pk}"
    with django_capture_on_commit_callbacks(execute=True):
        revoked = api.post(f"{url}/revoke", {"reason": "abuse"}, format="json")
    assert revoked.status_code == 200, revoked.json()
    assert revoked.json()["next_attempt_at"] is not None  # the work is queued, done after the answer
    assert api.get(url).json()["status"] == "revoked"
    again = api.post(f"{url}/revoke", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "grant_revoked")

    with django_capture_on_commit_callbacks(execute=True):
        granted = api.post(f"{url}/grant", {}, format="json")
    assert granted.status_code == 200
    assert api.get(url).json()["status"] == "granted"
    assert api.post(f"{url}/grant", {}, format="json").json()["code"] == "grant_granted"

    not_failed = api.post(f"{url}/retry", format="json")
    assert (not_failed.status_code, not_failed.json()["code"]) == (409, "grant_not_failed")
    BenefitGrant.objects.filter(pk=held.pk).update(
        error="timeout", errored_at=held.created_at, next_attempt_at=None
    )
    retried = api.post(f"{url}/retry", format="json")
    assert retried.status_code == 200 and retried.json()["next_attempt_at"] is not None

    entries = list(
        AuditEntry.objects.filter(object_id=str(held.pk))
        .order_by("created_at")
        .values_list("action", "reason", "actor_kind")
    )
    assert entries == [
        ("benefit_grant.revoke", "abuse", "token"),
        ("benefit_grant.grant", "", "token"),
        ("benefit_grant.retry", "", "token"),
    ]
    bad = api.post(f"{url}/revoke", {"reason": "x" * 2001}, format="json")
    assert bad.status_code == 400 and "reason" in fields(bad)


def test_deleting_a_benefit_revokes_its_grants(api, held, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/v1/benefits/{held.benefit_id}").status_code == 204
    held.refresh_from_db()
    assert (held.status, held.revoke_reason) == ("revoked", "benefit deleted")
    response = api.post(f"/v1/benefit-grants/{held.pk}/grant", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "benefit_deleted")
    assert api.get(f"/v1/benefit-grants/{held.pk}").json()["status"] == "revoked"


def test_grants_of_another_organization_are_hidden(make_org, make_api, held):
    other = make_api(make_org("Other"))
    assert other.get("/v1/benefit-grants").json()["results"] == []
    assert other.get(f"/v1/benefit-grants/{held.pk}").status_code == 404
    assert other.post(f"/v1/benefit-grants/{held.pk}/revoke", {}, format="json").status_code == 404
    held.refresh_from_db()
    assert held.status == "granted"


def test_the_openapi_document_has_the_routes_and_the_webhooks(client):
    schema = client.get("/v1/openapi.json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/v1/benefits"]) and {"get", "patch", "delete"} <= set(
        paths["/v1/benefits/{id}"]
    )
    assert {"get", "put", "post"} <= set(paths["/v1/products/{id}/benefits"])
    assert {"/v1/benefit-types", "/v1/benefit-grants", "/v1/benefit-grants/{id}/retry"} <= set(paths)
    assert {f"/v1/benefit-grants/{{id}}/{name}" for name in ("revoke", "grant")} <= set(paths)
    assert {
        "benefit.created", "benefit.updated", "benefit.deleted", "benefit_grant.created",
        "benefit_grant.cycled", "benefit_grant.updated", "benefit_grant.revoked",
    } <= set(schema["webhooks"])  # fmt: skip
