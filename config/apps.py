from django.contrib.admin.apps import AdminConfig


class BackofficeAdminConfig(AdminConfig):
    """Django admin, with Recur's backoffice site as the default site."""

    default_site = "config.backoffice.BackofficeSite"
