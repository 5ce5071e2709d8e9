from django.contrib import admin


class BackofficeSite(admin.AdminSite):
    site_header = "Recur backoffice"
    site_title = "Recur"
    index_title = "Dashboard"
