"""Backoffice pages of the platform itself: the operator audit log and job heartbeats.

Also the dashboard's placeholder cards: features not built yet. The app that builds one
registers a real card under the same key (see core.backoffice.dashboard).
"""

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from core import clock
from core.backoffice.audit_labels import attach_targets, current_label, current_status, data_summary
from core.backoffice.dashboard import dashboard
from core.backoffice.display import badge, pretty_json, when
from core.backoffice.search import parse_uuid
from core.models import AuditEntry, JobHeartbeat
from core.selectors import STALE_AFTER

dashboard.placeholder("mrr", title="MRR", feature="subscriptions", order=10)
dashboard.placeholder("active_subscriptions", title="Active subscriptions", feature="subscriptions", order=20)
dashboard.placeholder("revenue_30d", title="Revenue · 30 days", feature="orders", order=30)
dashboard.placeholder("failed_payments_7d", title="Failed payments · 7 days", feature="payments", order=40)
dashboard.placeholder("payouts_due", title="Payouts due", feature="payouts", order=50)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by code only: operators may look, never add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditChangeList(ChangeList):
    """The page's entries, with the objects they are about as stored now (one query per type)."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        attach_targets(self.result_list)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created", "actor_column", "what_happened", "object_link", "organization", "reason_short")
    list_display_links = ("created",)
    list_filter = ("action", "object_type", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("organization",)
    search_fields = ("actor_email", "reason")
    search_help_text = "An object id (exact), an actor's email, or words of the reason."
    show_full_result_count = False
    list_per_page = 50
    fields = (
        "created_at",
        "actor_link",
        "organization",
        "what_happened",
        "object_link",
        "object_type",
        "object_id",
        "reason",
        "data_pretty",
    )
    readonly_fields = ("actor_link", "what_happened", "object_link", "data_pretty")

    def get_changelist(self, request, **kwargs):
        return AuditChangeList

    def get_object(self, request, object_id, from_field=None):
        entry = super().get_object(request, object_id, from_field)
        if entry is not None:
            attach_targets([entry])
        return entry

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        found = parse_uuid(term) if term else None
        if found is not None or term.isdigit():
            return queryset.filter(object_id=str(found) if found else term), False
        return super().get_search_results(request, queryset, search_term)

    def _object_url(self, entry: AuditEntry) -> str | None:
        app_label, _, model_name = entry.object_type.partition(".")
        try:
            return reverse(
                f"{self.admin_site.name}:{app_label}_{model_name}_change", args=[quote(entry.object_id)]
            )
        except NoReverseMatch:
            return None

    @admin.display(description="when", ordering="created_at")
    def created(self, entry: AuditEntry):
        return when(entry.created_at)

    @admin.display(description="object", ordering="object_type")
    def object_link(self, entry: AuditEntry):
        """The object as it is now, with its current status (not the one of the moment)."""
        label = current_label(entry)
        status = current_status(entry)
        now = format_html(" {}", badge(f"now {status}", "muted")) if status else ""
        url = self._object_url(entry)
        if url is None or getattr(entry, "target", True) is None:
            gone = " (no longer exists)" if getattr(entry, "target", True) is None else ""
            return format_html('{}{} <span class="bo-quiet">{}</span>', label, gone, entry.object_type)
        return format_html(
            '<a href="{}">{}</a>{} <span class="bo-quiet">{}</span>', url, label, now, entry.object_type
        )

    @admin.display(description="what happened", ordering="action")
    def what_happened(self, entry: AuditEntry):
        summary = data_summary(entry)
        if not summary:
            return entry.action
        return format_html('{} <span class="bo-quiet">{}</span>', entry.action, summary)

    @admin.display(description="actor", ordering="actor_label")
    def actor_column(self, entry: AuditEntry) -> str:
        return entry.actor_display

    @admin.display(description="actor")
    def actor_link(self, entry: AuditEntry):
        if entry.actor_id is None:
            return entry.actor_display
        try:
            url = reverse(f"{self.admin_site.name}:accounts_user_change", args=[entry.actor_id])
        except NoReverseMatch:
            return entry.actor_email
        return format_html('<a href="{}">{}</a>', url, entry.actor_email)

    @admin.display(description="reason")
    def reason_short(self, entry: AuditEntry) -> str:
        return Truncator(entry.reason).chars(80)

    @admin.display(description="data")
    def data_pretty(self, entry: AuditEntry):
        return pretty_json(entry.data)


@admin.register(JobHeartbeat)
class JobHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "last_run", "hostname", "runs")
    fields = ("name", "status", "last_run_at", "hostname", "runs")
    readonly_fields = ("status",)

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, heartbeat: JobHeartbeat):
        return when(heartbeat.last_run_at)

    @admin.display(description="status")
    def status(self, heartbeat: JobHeartbeat):
        if clock.now() - heartbeat.last_run_at <= STALE_AFTER:
            return badge("alive", "good")
        return badge("stale", "bad")
