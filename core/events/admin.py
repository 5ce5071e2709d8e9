"""Backoffice: domain events (payload, who handled them) and the handlings, with retry."""

import uuid

from django.contrib import admin
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.display import badge, pretty_json, when
from core.backoffice.timeline import admin_change_url
from core.events.models import EVENT_ID_PREFIX, Event, EventHandling
from core.events.registry import REGISTRY
from core.events.services import event_envelope, event_handling_retry

HANDLING_TONES = {"done": "good", "failed": "bad", "pending": "info"}


def _handling_badge(handling: EventHandling):
    given_up = handling.status == EventHandling.Status.FAILED and handling.next_attempt_at is None
    return badge("given up" if given_up else handling.status, HANDLING_TONES.get(handling.status, "muted"))


def _object_link(event: Event):
    kind = REGISTRY.kinds.get(event.object_type)
    url = kind and admin_change_url(kind.model._meta.app_label, kind.model._meta.model_name, event.object_id)
    label = f"{event.object_type} {event.object_id}"
    return format_html('<a href="{}">{}</a>', url, label) if url else label


class EventHandlingInline(admin.TabularInline):
    model = EventHandling
    fields = ("consumer", "status_badge", "attempts", "next_attempt_at", "done_at", "error_last_line")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="status")
    def status_badge(self, handling: EventHandling):
        return _handling_badge(handling)

    @admin.display(description="error")
    def error_last_line(self, handling: EventHandling) -> str:
        return (handling.error.strip().splitlines() or ["—"])[-1][:200]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    inlines = [EventHandlingInline]
    list_display = ("occurred", "type", "object_display", "organization", "dispatched")
    list_filter = ("type", "object_type", "organization", ("occurred_at", admin.DateFieldListFilter))
    list_select_related = ("organization",)
    search_fields = ("=object_id",)
    search_help_text = "An event id (evt_…) or an object id (exact)."
    show_full_result_count = False
    list_per_page = 50
    fields = (
        "public_id",
        "type",
        "object_display",
        "organization",
        "occurred_at",
        "dispatched_at",
        "envelope_pretty",
    )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.startswith(EVENT_ID_PREFIX):
            try:
                return queryset.filter(uuid=uuid.UUID(hex=term[len(EVENT_ID_PREFIX) :])), False
            except ValueError:
                return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="occurred", ordering="id")
    def occurred(self, event: Event):
        return when(event.occurred_at)

    @admin.display(description="object")
    def object_display(self, event: Event):
        return _object_link(event)

    @admin.display(description="dispatched", boolean=True)
    def dispatched(self, event: Event) -> bool:
        return event.dispatched_at is not None

    @admin.display(description="id")
    def public_id(self, event: Event) -> str:
        return event.public_id

    @admin.display(description="payload (as webhooks and the API carry it)")
    def envelope_pretty(self, event: Event):
        return pretty_json(event_envelope(event))


class RetryHandling(ModalAction):
    name = "retry"
    label = "Retry now"
    title = "Run this consumer again"
    description = (
        "Runs the consumer on this event again now, also after it gave up. Consumers are "
        "idempotent: what was already applied stays. Recorded in the audit log."
    )
    permission = "events.change_eventhandling"
    submit_label = "Retry"

    def is_available(self, request, obj: EventHandling) -> bool:
        return obj.status != EventHandling.Status.DONE

    def get_facts(self, request, obj: EventHandling):
        return [
            ("Consumer", obj.consumer),
            ("Event", f"{obj.event.type} ({obj.event.public_id})"),
            ("Attempts", obj.attempts),
            ("Error", (obj.error.strip().splitlines() or ["—"])[-1]),
        ]

    def perform(self, request, obj: EventHandling, form):
        return event_handling_retry(handling=obj, actor=request.user)


@admin.register(EventHandling)
class EventHandlingAdmin(ModalActionsMixin, ReadOnlyAdmin):
    modal_actions = [RetryHandling]
    list_display = ("id", "consumer", "event_link", "status_badge", "attempts", "next_attempt", "error_short")
    list_filter = ("status", "consumer")
    list_select_related = ("event",)
    search_fields = ("=event__object_id",)
    search_help_text = "An object id (exact)."
    show_full_result_count = False
    list_per_page = 50
    fields = (
        "consumer",
        "event_link",
        "status_badge",
        "attempts",
        "created_at",
        "next_attempt_at",
        "done_at",
        "error_pre",
    )

    @admin.display(description="event")
    def event_link(self, handling: EventHandling):
        url = admin_change_url("events", "event", handling.event_id)
        return format_html('<a href="{}">{}</a>', url, handling.event.type) if url else handling.event.type

    @admin.display(description="status", ordering="status")
    def status_badge(self, handling: EventHandling):
        return _handling_badge(handling)

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, handling: EventHandling):
        return when(handling.next_attempt_at)

    @admin.display(description="error")
    def error_short(self, handling: EventHandling) -> str:
        return (handling.error.strip().splitlines() or [""])[-1][:80]

    @admin.display(description="error")
    def error_pre(self, handling: EventHandling):
        return format_html('<pre class="bo-json">{}</pre>', handling.error) if handling.error else "—"
