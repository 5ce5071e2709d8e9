"""/v1/webhook-endpoints and /v1/webhook-deliveries: the secret shown once, bad input refused
field by field with nothing written, another organization's deliveries out of reach."""

import logging

import pytest

from billing.webhooks import delivery, services, transport
from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from core.api.scopes import ALL_SCOPES
from core.audit import AuditEntry
from core.events.models import Event

pytestmark = pytest.mark.django_db


def field_error(response, field: str) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    [error] = [e for e in body["errors"] if e["field"] == field]
    return error


def _create(api, url, **body):
    return api.post("/v1/webhook-endpoints", {"url": url, "event_types": ["*"], **body}, format="json")


def test_create_shows_the_secret_once_and_never_again(api, receiver, events_registry, caplog, committed):
    caplog.set_level(logging.DEBUG)
    response = _create(api, receiver.url + "/hook", description="orders")
    assert response.status_code == 201, response.content
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["event_types"] == ["*"] and created["enabled"]
    listed = api.get("/v1/webhook-endpoints")
    got = api.get(f"/v1/webhook-endpoints/{created['id']}")
    assert listed.status_code == got.status_code == 200
    for response in (listed, got):
        assert (
            secret not in response.content.decode()
            and "secret" not in response.json().get("results", [{}])[0]
        )
    assert "secret" not in got.json()
    with committed():
        tested = api.post(f"/v1/webhook-endpoints/{created['id']}/test")
    assert tested.status_code == 202
    assert receiver.at("/hook")[0].verify(secret)["id"] == tested.json()["event_id"]
    rotated = api.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret").json()
    assert rotated["secret"] != secret and rotated["previous_secret_expires_at"]
    text = caplog.text + str(list(AuditEntry.objects.values()))
    text += str(list(Event.objects.values("data")))
    assert secret not in text and rotated["secret"] not in text


def test_update_list_deliveries_and_delete(api, receiver, events_registry, committed):
    endpoint = _create(api, receiver.url + "/hook").json()
    changed = api.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}",
        {"event_types": ["webhook_endpoint.test"], "description": "tests only"},
        format="json",
    )
    assert changed.status_code == 200 and changed.json()["event_types"] == ["webhook_endpoint.test"]
    with committed():
        api.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
    deliveries = api.get("/v1/webhook-deliveries", {"endpoint": endpoint["id"]})
    assert deliveries.status_code == 200
    [row] = deliveries.json()["results"]
    assert row["status"] == "delivered" and row["event_type"] == "webhook_endpoint.test"
    assert row["attempts_made"][0]["status_code"] == 200
    with committed():
        again = api.post(f"/v1/webhook-deliveries/{row['id']}/redeliver")
    assert again.status_code == 200 and again.json()["status"] == "pending"
    assert WebhookDelivery.objects.get().attempts == 2
    assert api.post(f"/v1/webhook-endpoints/{endpoint['id']}/redeliver").json() == {"redelivered": 0}
    off = api.patch(f"/v1/webhook-endpoints/{endpoint['id']}", {"enabled": False}, format="json")
    assert off.json()["enabled"] is False and off.json()["disabled_reason"]
    assert api.delete(f"/v1/webhook-endpoints/{endpoint['id']}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "https://example.com/" + "a" * 2001}, "url"),
        ({"url": "not a url"}, "url"),
        ({"event_types": ["order.exploded"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"event_types": "*"}, "event_types"),
        ({"description": "x" * 501}, "description"),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(api, events_registry, body, field):
    response = api.post(
        "/v1/webhook-endpoints",
        {"url": "https://example.com/hook", "event_types": ["*"], **body},
        format="json",
    )
    field_error(response, field)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not https
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
    ],
)
def test_in_production_private_addresses_and_plain_http_are_refused(api, events_registry, settings, url):
    settings.RECUR_WEBHOOK_ALLOW_PRIVATE = False
    error = field_error(_create(api, url), "url")
    assert error["code"] == "url_refused"
    assert not WebhookEndpoint.objects.exists()


def test_an_update_to_a_bad_url_changes_nothing(api, receiver, events_registry, settings):
    endpoint = _create(api, receiver.url + "/hook").json()
    settings.RECUR_WEBHOOK_ALLOW_PRIVATE = False
    response = api.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}",
        {"url": "https://127.0.0.1/x", "description": "changed"},
        format="json",
    )
    field_error(response, "url")
    assert WebhookEndpoint.objects.get().description == ""
    unknown = api.patch(f"/v1/webhook-endpoints/{endpoint['id']}", {"event_types": ["nope"]}, format="json")
    field_error(unknown, "event_types")


def test_another_organizations_endpoints_and_deliveries_are_not_found(
    api, make_org, make_api, receiver, events_registry, committed
):
    other = make_api(make_org("Other"))
    endpoint = _create(other, receiver.url + "/theirs").json()
    with committed():
        other.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
    delivery = WebhookDelivery.objects.get()
    before = list(WebhookDelivery.objects.values())
    assert api.post(f"/v1/webhook-deliveries/{delivery.pk}/redeliver").status_code == 404
    assert api.get(f"/v1/webhook-deliveries/{delivery.pk}").status_code == 404
    assert api.post(f"/v1/webhook-endpoints/{endpoint['id']}/redeliver").status_code == 404
    assert api.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret").status_code == 404
    assert api.get("/v1/webhook-deliveries").json()["results"] == []
    assert list(WebhookDelivery.objects.values()) == before
    assert len(receiver.at("/theirs")) == 1


def test_the_webhooks_scope_is_required(org, make_api, events_registry):
    reader = make_api(org, scopes=[s for s in ALL_SCOPES if s != "webhooks:write"])
    assert reader.get("/v1/webhook-endpoints").status_code == 200
    assert _create(reader, "https://example.com/hook").status_code == 403
    blind = make_api(org, scopes=[s for s in ALL_SCOPES if not s.startswith("webhooks")])
    assert blind.get("/v1/webhook-deliveries").status_code == 403


def test_operators_changes_are_audited_without_the_secret(org, operator, events_registry, caplog):
    caplog.set_level(logging.DEBUG)
    endpoint, secret = services.webhook_endpoint_create(
        organization=org, url="https://example.com/hook", event_types=["*"], actor=operator
    )
    rotated = services.webhook_endpoint_rotate_secret(endpoint=endpoint, actor=operator)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"webhook_endpoint.create", "webhook_endpoint.rotate_secret"} <= actions
    text = str(list(AuditEntry.objects.values())) + caplog.text
    assert secret not in text and rotated not in text
    assert secret[len("whsec_") :] not in text


def test_an_endpoint_deleted_while_its_delivery_is_in_flight_is_no_error(org, receiver, events_registry):
    endpoint, _ = services.webhook_endpoint_create(
        organization=org, url=receiver.plan("/gone"), event_types=["*"]
    )
    event = services.webhook_endpoint_send_test(endpoint=endpoint)
    delivery.webhook_deliveries_create(event=event)
    [claim] = delivery.deliveries_claim(limit=10)
    services.webhook_endpoint_delete(endpoint=endpoint)
    outcome = delivery.Outcome(claim, event.occurred_at, transport.SendResult(200, 5, "ok"))
    delivery.attempts_record(outcomes=[outcome])  # nothing to record, nothing raised
    assert not WebhookDelivery.objects.exists()
