"""What the webhook backoffice pages and the dashboard card share: the health of an endpoint
(healthy, failing, disabled), its recent success rate, and the status badges."""

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from billing.webhooks.services import AUTO_DISABLED_REASON
from core.backoffice.display import badge

RECENT_DELIVERIES = 50  # the success rate is over an endpoint's last this many tried deliveries

DELIVERY_TONES = {
    WebhookDelivery.Status.DELIVERED: "good",
    WebhookDelivery.Status.PENDING: "info",
    WebhookDelivery.Status.FAILED: "warn",
    WebhookDelivery.Status.ABANDONED: "bad",
}

# Failing: enabled, with a run of failures not yet broken by a success.
FAILING = Q(enabled=True, failing_since__isnull=False)
# Disabled automatically: the delivery engine turned it off after a day of failures.
AUTO_DISABLED = Q(enabled=False, disabled_reason=AUTO_DISABLED_REASON)


def endpoints_failing() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(FAILING)


def endpoints_auto_disabled() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(AUTO_DISABLED)


def endpoint_status_badge(endpoint: WebhookEndpoint):
    if not endpoint.enabled:
        auto = endpoint.disabled_reason == AUTO_DISABLED_REASON
        return badge("disabled automatically" if auto else "disabled", "bad" if auto else "muted")
    if endpoint.failing_since is not None:
        return badge("failing", "warn")
    return badge("enabled", "good")


def delivery_status_badge(delivery: WebhookDelivery):
    return badge(delivery.status, DELIVERY_TONES.get(delivery.status, "muted"))


# One correlated subquery per column, over the (endpoint, event) unique index: an endpoint's
# newest deliveries are those of its newest events, so the index gives them without a sort.
_RECENT = f"""
    SELECT d.status FROM webhooks_webhookdelivery d
    WHERE d.endpoint_id = webhooks_webhookendpoint.id AND d.attempts > 0
    ORDER BY d.event_id DESC LIMIT {RECENT_DELIVERIES}
"""


def with_recent_success(queryset: QuerySet[WebhookEndpoint]) -> QuerySet[WebhookEndpoint]:
    """Annotate ``recent_tried`` and ``recent_delivered``: of the endpoint's last
    ``RECENT_DELIVERIES`` deliveries that were tried at least once, how many arrived."""
    return queryset.annotate(
        recent_tried=RawSQL(f"SELECT count(*) FROM ({_RECENT}) r", ()),
        recent_delivered=RawSQL(f"SELECT count(*) FROM ({_RECENT}) r WHERE r.status = 'delivered'", ()),
    )


@dataclass(frozen=True)
class SuccessRate:
    delivered: int
    tried: int

    @property
    def tone(self) -> str:
        if not self.tried:
            return "muted"
        share = self.delivered / self.tried
        return "good" if share >= 0.95 else ("warn" if share >= 0.5 else "bad")

    def __str__(self) -> str:
        if not self.tried:
            return "no deliveries yet"
        return f"{100 * self.delivered // self.tried}% of the last {self.tried}"


def success_rate(endpoint: WebhookEndpoint) -> SuccessRate:
    """From the annotations of ``with_recent_success``, or one query when they are absent."""
    if not hasattr(endpoint, "recent_tried"):
        endpoint = with_recent_success(WebhookEndpoint.objects.filter(pk=endpoint.pk)).get()
    return SuccessRate(delivered=endpoint.recent_delivered, tried=endpoint.recent_tried)
