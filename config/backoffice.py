from django.contrib import admin
from django.urls import NoReverseMatch, reverse


class BackofficeSite(admin.AdminSite):
    """Django admin as Recur's backoffice: a dashboard for an index, HTMX modal actions.

    Cards come from ``core.backoffice.dashboard.dashboard`` (each app's admin.py registers
    its own); the System panel from ``core.backoffice.system.system_status()``.
    """

    site_header = "Recur backoffice"
    site_title = "Recur"
    index_title = "Dashboard"
    index_template = "backoffice/dashboard.html"
    site_url = None  # "/" only redirects back here
    enable_nav_sidebar = False  # lists need the width; the dashboard links every model

    # Libraries' apps come after Recur's own, in this order; the dashboard folds the long ones.
    library_apps: tuple[str, ...] = ("django_celery_beat", "auth", "djstripe")
    folded_apps: frozenset[str] = frozenset({"djstripe"})

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        rank = {label: i for i, label in enumerate(self.library_apps, start=1)}
        return sorted(apps, key=lambda app: rank.get(app["app_label"], 0))  # stable: by name within

    def index(self, request, extra_context=None):
        from core.backoffice.dashboard import dashboard
        from core.backoffice.system import system_status
        from core.models import AuditEntry

        user = request.user
        context = {
            "cards": dashboard.cards(request),
            "system": system_status(),
            "folded_apps": self.folded_apps,
            "periodic_tasks_url": self._url_if(user, "django_celery_beat", "periodictask"),
            "heartbeats_url": self._url_if(user, "core", "jobheartbeat"),
            "audit_url": self._url_if(user, "core", "auditentry"),
            "recent_audit": (
                list(AuditEntry.objects.order_by("-created_at", "-id")[:8])
                if user.has_perm("core.view_auditentry")
                else None
            ),
        }
        return super().index(request, extra_context={**context, **(extra_context or {})})

    def _url_if(self, user, app_label: str, model_name: str) -> str | None:
        """The changelist URL of a model, if the user may view it."""
        if not user.has_perm(f"{app_label}.view_{model_name}") and not user.has_perm(
            f"{app_label}.change_{model_name}"
        ):
            return None
        try:
            return reverse(f"{self.name}:{app_label}_{model_name}_changelist")
        except NoReverseMatch:
            return None
