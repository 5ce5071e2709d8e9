"""The webhook backoffice: endpoints with their health and actions, deliveries with their
attempts, the dashboard card, and who may do what."""

from datetime import timedelta

import pytest
from django.urls import reverse

from billing.webhooks import services
from billing.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.webhooks.services import AUTO_DISABLED_REASON
from core import clock
from core.events.models import Event
from core.events.registry import REGISTRY, EventType
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

D = WebhookDelivery.Status
ENDPOINTS = reverse("admin:webhooks_webhookendpoint_changelist")
DELIVERIES = reverse("admin:webhooks_webhookdelivery_changelist")


def endpoint_url(endpoint, action=None) -> str:
    if action:
        return reverse(f"admin:webhooks_webhookendpoint_{action}", args=[endpoint.pk])
    return reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])


@pytest.fixture(autouse=True)
def catalogue(monkeypatch):
    """The event types these tests use, whichever apps have registered theirs yet."""
    for name in ("order.paid", "order.refunded", "subscription.past_due"):
        kind = name.split(".")[0]
        monkeypatch.setitem(REGISTRY.types, name, EventType(name=name, object_type=kind, description=name))


@pytest.fixture
def merchant_endpoint(org):
    endpoint, _secret = services.webhook_endpoint_create(
        organization=org, url="https://hooks.example.com/recur", event_types=["*"], description="Production"
    )
    return endpoint


def seed_delivery(endpoint, *, status, codes=(), object_id="o1", event_type="order.paid") -> WebhookDelivery:
    """A delivery as the delivery engine leaves it after ``codes`` attempts (None: a timeout)."""
    event = Event.objects.create(
        organization=endpoint.organization,
        type=event_type,
        object_type=event_type.split(".")[0],
        object_id=object_id,
        data={"id": object_id},
        dispatched_at=clock.now(),
    )
    delivery = WebhookDelivery.objects.create(
        organization=endpoint.organization,
        endpoint=endpoint,
        event=event,
        object_key=f"{event.object_type}:{object_id}",
        status=status,
        attempts=len(codes),
        last_status_code=codes[-1] if codes else None,
        delivered_at=clock.now() if status == D.DELIVERED else None,
        next_attempt_at=clock.now() + timedelta(minutes=5) if status == D.FAILED else None,
    )
    for code in codes:
        WebhookAttempt.objects.create(
            delivery=delivery,
            status_code=code,
            duration_ms=10_000 if code is None else 42,
            response_excerpt="" if code is None else f"answer {code}",
            error="timed out after 10 s" if code is None else "",
        )
    return delivery


def test_endpoint_list_shows_health_and_success_rate(
    backoffice, merchant_endpoint, make_org, django_assert_max_num_queries
):
    for i in range(3):
        seed_delivery(merchant_endpoint, status=D.DELIVERED, codes=[200], object_id=f"ok{i}")
    seed_delivery(merchant_endpoint, status=D.FAILED, codes=[500], object_id="bad")
    seed_delivery(merchant_endpoint, status=D.PENDING, object_id="waiting")  # not tried: not counted
    other, _ = services.webhook_endpoint_create(
        organization=make_org("Globex"), url="https://globex.example/hooks", event_types=["order.paid"]
    )
    WebhookEndpoint.objects.filter(pk=other.pk).update(
        enabled=False,
        failing_since=clock.now() - timedelta(days=1, hours=1),
        disabled_at=clock.now(),
        disabled_reason=AUTO_DISABLED_REASON,
    )

    with django_assert_max_num_queries(8):
        response = backoffice.get(ENDPOINTS)

    html = response.content.decode()
    assert response.status_code == 200
    assert "https://hooks.example.com/recur" in html and "Acme" in html
    assert "75% of the last 4" in html
    assert "disabled automatically" in html and AUTO_DISABLED_REASON in html
    assert "no deliveries yet" in html
    assert "whsec_" not in html

    failing = backoffice.get(ENDPOINTS, {"health": "disabled_auto"}).context["cl"].result_list
    assert [e.pk for e in failing] == [other.pk]
    healthy = backoffice.get(ENDPOINTS, {"health": "healthy"}).context["cl"].result_list
    assert [e.pk for e in healthy] == [merchant_endpoint.pk]


def test_endpoint_page_shows_settings_deliveries_and_never_the_secret(backoffice, merchant_endpoint):
    seed_delivery(
        merchant_endpoint, status=D.FAILED, codes=[503], object_id="o9", event_type="subscription.past_due"
    )

    response = backoffice.get(endpoint_url(merchant_endpoint))

    html = response.content.decode()
    assert response.status_code == 200
    assert "every event" in html and "Production" in html
    assert "subscription.past_due" in html and "subscription:o9" in html and "503" in html
    for action in ("edit", "test", "redeliver_failed", "rotate", "disable"):
        assert endpoint_url(merchant_endpoint, action) in html
    assert endpoint_url(merchant_endpoint, "enable") not in html
    assert merchant_endpoint.secret not in html and "whsec_" not in html


def test_rotate_secret_shows_the_new_secret_once_and_not_in_the_audit_log(backoffice, merchant_endpoint):
    old = merchant_endpoint.secret

    response = backoffice.post(endpoint_url(merchant_endpoint, "rotate"))

    merchant_endpoint.refresh_from_db()
    new = merchant_endpoint.secret
    assert new != old and new.startswith("whsec_") and merchant_endpoint.previous_secret == old
    assert response.status_code == 200 and new in response.content.decode()
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    page = backoffice.get(endpoint_url(merchant_endpoint)).content.decode()
    assert new not in page and old not in page and "previous secret also signs until" in page
    entry = AuditEntry.objects.get(action__contains="rotate")
    assert new not in str(entry.data) and old not in str(entry.data) and new not in entry.reason


def test_rotate_secret_in_the_modal_answers_with_the_secret_dialog(backoffice, merchant_endpoint, htmx):
    response = backoffice.post(endpoint_url(merchant_endpoint, "rotate"), **htmx)

    merchant_endpoint.refresh_from_db()
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith("<dialog")
    assert merchant_endpoint.secret in html


def test_edit_settings_goes_through_the_service_and_bad_values_are_form_errors(backoffice, merchant_endpoint):
    url = endpoint_url(merchant_endpoint, "edit")

    bad_types = backoffice.post(url, {"url": merchant_endpoint.url, "event_types": "order.paid, order.eaten"})
    bad_url = backoffice.post(url, {"url": "ftp://files.example.com/x", "event_types": "order.paid"})
    too_long = backoffice.post(url, {"url": "https://x.example/" + "a" * 2100, "event_types": "*"})

    assert bad_types.status_code == 200 and "order.eaten" in str(
        bad_types.context["form"].errors["event_types"]
    )
    assert "url" in bad_url.context["form"].errors
    assert "url" in too_long.context["form"].errors
    merchant_endpoint.refresh_from_db()
    assert (
        merchant_endpoint.event_types == ["*"] and merchant_endpoint.url == "https://hooks.example.com/recur"
    )
    assert not AuditEntry.objects.filter(action__contains="update").exists()

    ok = backoffice.post(
        url,
        {
            "url": "https://hooks.example.com/v2",
            "event_types": "order.paid order.refunded",
            "description": "",
        },
    )

    assert ok.status_code == 302
    merchant_endpoint.refresh_from_db()
    assert merchant_endpoint.url == "https://hooks.example.com/v2"
    assert merchant_endpoint.event_types == ["order.paid", "order.refunded"]


def test_disable_needs_a_reason_then_enable_turns_it_back_on(backoffice, merchant_endpoint):
    refused = backoffice.post(endpoint_url(merchant_endpoint, "disable"), {"reason": ""})
    assert "reason" in refused.context["form"].errors
    merchant_endpoint.refresh_from_db()
    assert merchant_endpoint.enabled

    backoffice.post(endpoint_url(merchant_endpoint, "disable"), {"reason": "merchant asked, migrating"})
    merchant_endpoint.refresh_from_db()
    assert not merchant_endpoint.enabled and merchant_endpoint.disabled_reason == "merchant asked, migrating"
    page = backoffice.get(endpoint_url(merchant_endpoint)).content.decode()
    assert endpoint_url(merchant_endpoint, "enable") in page and "merchant asked, migrating" in page

    backoffice.post(endpoint_url(merchant_endpoint, "enable"))
    merchant_endpoint.refresh_from_db()
    assert merchant_endpoint.enabled and merchant_endpoint.disabled_at is None


def test_redeliver_failed_queues_every_failed_delivery_of_the_endpoint(
    backoffice, merchant_endpoint, make_org
):
    failed = seed_delivery(merchant_endpoint, status=D.FAILED, codes=[500], object_id="a")
    abandoned = seed_delivery(merchant_endpoint, status=D.ABANDONED, codes=[500] * 3, object_id="b")
    delivered = seed_delivery(merchant_endpoint, status=D.DELIVERED, codes=[200], object_id="c")
    elsewhere, _ = services.webhook_endpoint_create(
        organization=make_org("Globex"), url="https://globex.example/hooks", event_types=["*"]
    )
    other_failed = seed_delivery(elsewhere, status=D.FAILED, codes=[500], object_id="d")

    response = backoffice.post(endpoint_url(merchant_endpoint, "redeliver_failed"), follow=True)

    assert "2 deliveries queued again" in response.content.decode()
    statuses = dict(WebhookDelivery.objects.values_list("pk", "status"))
    assert statuses[failed.pk] != D.FAILED and statuses[abandoned.pk] != D.ABANDONED
    assert statuses[delivered.pk] == D.DELIVERED and statuses[other_failed.pk] == D.FAILED


def test_delivery_list_filters_and_delivery_page_shows_attempts(backoffice, merchant_endpoint, make_org):
    timed_out = seed_delivery(
        merchant_endpoint, status=D.FAILED, codes=[None, 502], event_type="order.refunded"
    )
    ok = seed_delivery(merchant_endpoint, status=D.DELIVERED, codes=[200], object_id="o2")
    elsewhere, _ = services.webhook_endpoint_create(
        organization=make_org("Globex"), url="https://globex.example/hooks", event_types=["*"]
    )
    seed_delivery(elsewhere, status=D.DELIVERED, codes=[200], object_id="o3")

    listed = backoffice.get(DELIVERIES)
    assert listed.status_code == 200 and "order.refunded" in listed.content.decode()

    def found(**query):
        return {d.pk for d in backoffice.get(DELIVERIES, query).context["cl"].result_list}

    assert found(status__exact="failed") == {timed_out.pk}
    assert found(type="order.refunded") == {timed_out.pk}
    assert found(endpoint=str(merchant_endpoint.pk)) == {timed_out.pk, ok.pk}
    assert found(endpoint="not-a-uuid") == set()
    assert found(q=f"evt_{ok.event.uuid.hex}") == {ok.pk}
    assert found(q=str(ok.pk)) == {ok.pk}
    assert found(q="order:o2") == {ok.pk}

    page = backoffice.get(reverse("admin:webhooks_webhookdelivery_change", args=[timed_out.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "timed out after 10 s" in html and "10000 ms" in html and "answer 502" in html and "42 ms" in html
    assert timed_out.event.public_id in html
    assert reverse("admin:webhooks_webhookdelivery_redeliver", args=[timed_out.pk]) in html


def test_redeliver_one_delivery(backoffice, merchant_endpoint):
    delivery = seed_delivery(merchant_endpoint, status=D.ABANDONED, codes=[500, 500])

    response = backoffice.post(reverse("admin:webhooks_webhookdelivery_redeliver", args=[delivery.pk]))

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status != D.ABANDONED
    assert AuditEntry.objects.filter(action__contains="redeliver", object_id=str(delivery.pk)).exists()


def dashboard_card(client):
    cards = {card.key: card for card in client.get(reverse("admin:index")).context["cards"]}
    return cards["webhook_endpoints_failing"]


def test_dashboard_card_lists_disabled_and_failing_endpoints(backoffice, merchant_endpoint, make_org):
    assert dashboard_card(backoffice).value == "0" and dashboard_card(backoffice).tone == "good"

    WebhookEndpoint.objects.filter(pk=merchant_endpoint.pk).update(
        failing_since=clock.now() - timedelta(hours=3)
    )
    card = dashboard_card(backoffice)
    assert card.value == "1" and card.tone == "warn"
    assert card.items[0].url == endpoint_url(merchant_endpoint) and "failing since" in card.items[0].text

    dead, _ = services.webhook_endpoint_create(
        organization=make_org("Globex"), url="https://globex.example/hooks", event_types=["*"]
    )
    WebhookEndpoint.objects.filter(pk=dead.pk).update(
        enabled=False,
        failing_since=clock.now() - timedelta(days=1, hours=2),
        disabled_at=clock.now(),
        disabled_reason=AUTO_DISABLED_REASON,
    )
    card = dashboard_card(backoffice)
    assert card.value == "2" and card.tone == "bad" and "1 disabled automatically" in card.hint
    assert [item.url for item in card.items] == [endpoint_url(dead), endpoint_url(merchant_endpoint)]
    assert "health=disabled_auto" in card.url
    assert "Globex" in backoffice.get(reverse("admin:index")).content.decode()


def test_support_may_redeliver_but_not_rotate_or_disable(client, make_staff, merchant_endpoint):
    client.force_login(make_staff("support"))

    page = client.get(endpoint_url(merchant_endpoint)).content.decode()

    assert endpoint_url(merchant_endpoint, "redeliver_failed") in page
    assert endpoint_url(merchant_endpoint, "rotate") not in page
    assert client.post(endpoint_url(merchant_endpoint, "rotate")).status_code == 403
    assert client.post(endpoint_url(merchant_endpoint, "disable"), {"reason": "x"}).status_code == 403
    merchant_endpoint.refresh_from_db()
    assert merchant_endpoint.enabled


def test_send_test_event_records_a_test_event_for_that_endpoint(backoffice, merchant_endpoint):
    response = backoffice.post(endpoint_url(merchant_endpoint, "test"))

    assert response.status_code == 302
    event = Event.objects.get(type="webhook_endpoint.test")
    assert event.object_id == str(merchant_endpoint.pk)


def test_a_disabled_endpoint_offers_no_redelivery(backoffice, merchant_endpoint):
    delivery = seed_delivery(merchant_endpoint, status=D.FAILED, codes=[500])
    services.webhook_endpoint_disable(endpoint=merchant_endpoint, reason="paused by the merchant")

    page = backoffice.get(endpoint_url(merchant_endpoint)).content.decode()
    refused = backoffice.post(endpoint_url(merchant_endpoint, "redeliver_failed"))

    assert endpoint_url(merchant_endpoint, "redeliver_failed") not in page
    assert refused.status_code == 200 and refused.context["form"].errors
    delivery.refresh_from_db()
    assert delivery.status == D.FAILED
