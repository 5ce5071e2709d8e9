"""Backoffice: the files of downloadable benefits. Upload one for an organization (the size
limit and a checksum mismatch are form errors), look at its downloads per grant, archive it.
Each change calls one service of ``benefits.downloadables.services``, which audits it."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import Organization
from benefits.downloadables import services
from benefits.downloadables.models import DownloadCount, File
from benefits.downloadables.uploads import upload_facts
from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin, form_add_service_error
from core.backoffice.display import admin_link, badge, when
from core.backoffice.search import IdSearchMixin
from core.errors import ServiceError

FILE_ADD = "downloadables.add_file"
FILE_CHANGE = "downloadables.change_file"
DOWNLOADS_ON_PAGE = 50


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


class FileUploadForm(forms.Form):
    # The organization and the text fields come before the file in the page, so they arrive
    # before it: an oversized file stops the upload, and what came first is still there.
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())  # autocomplete, see __init__
    name = forms.CharField(
        required=False, max_length=services.NAME_MAX, help_text="The download's name; defaults to the file's."
    )
    checksum_sha256 = forms.CharField(
        required=False,
        max_length=64,
        label="SHA-256 (optional)",
        help_text="The merchant's checksum of the file; the upload is refused if the bytes differ.",
    )
    file = forms.FileField()

    def __init__(self, *args, admin_site, too_large: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.too_large = too_large
        self.fields["organization"] = forms.ModelChoiceField(
            queryset=Organization.objects.all(),
            widget=AutocompleteSelect(
                File._meta.get_field("organization"), admin_site, attrs={"style": "width: 100%"}
            ),
        )
        self.fields["file"].help_text = f"At most {_size(settings.RECUR_FILE_MAX_BYTES)}."

    def full_clean(self):
        super().full_clean()
        if self.too_large:  # the upload was cut off at the limit: that, not a missing file, is the error
            self._errors.pop("file", None)
            self.add_error("file", ValidationError(services.too_large_error().detail, code="file_too_large"))


class ArchiveFile(ModalAction):
    name = "archive"
    label = "Archive"
    title = "Archive the file"
    description = (
        "Its download links stop working at once and it leaves every grant of the benefits that "
        "list it. The bytes stay in storage."
    )
    permission = FILE_CHANGE
    submit_label = "Archive"
    danger = True
    success_message = "File archived."

    def is_available(self, request, obj: File) -> bool:
        return obj.archived_at is None

    def perform(self, request, obj: File, form):
        return services.file_archive(file=obj, actor=request.user)


class ArchivedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("no", "available"), ("yes", "archived")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(archived_at__isnull=self.value() == "no")
        return queryset


@admin.register(File)
class FileAdmin(ModalActionsMixin, IdSearchMixin, ReadOnlyAdmin):
    modal_actions = [ArchiveFile]
    change_form_template = "backoffice/billing_change_form.html"
    list_display = ("name", "organization", "size_display", "mime_type", "uploaded", "status")
    list_filter = (ArchivedFilter, "organization")
    list_select_related = ("organization",)
    search_fields = ("name", "=checksum_sha256")
    search_help_text = "Words of the name, a SHA-256 (exact) or a file id."
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (
            None,
            {"fields": ("name", "organization", "status", "mime_type", "size_display", "checksum_sha256")},
        ),
        ("Storage", {"fields": ("storage_path", "uploaded_at", "archived_at")}),
        ("Downloads", {"fields": ("downloads_table",)}),
        ("Record", {"fields": ("id", "created_at", "updated_at")}),
    )

    def has_add_permission(self, request):
        return request.user.has_perm(FILE_ADD)

    @admin.display(description="size", ordering="size")
    def size_display(self, file: File) -> str:
        return _size(file.size)

    @admin.display(description="uploaded", ordering="uploaded_at")
    def uploaded(self, file: File):
        return when(file.uploaded_at)

    @admin.display(description="status", ordering="archived_at")
    def status(self, file: File):
        return badge("archived", "muted") if file.archived_at else badge("available", "good")

    @admin.display(description="downloads per grant")
    def downloads_table(self, file: File):
        rows = list(
            DownloadCount.objects.filter(file=file)
            .select_related("grant__customer")
            .order_by("-last_downloaded_at")[:DOWNLOADS_ON_PAGE]
        )
        return render_to_string(
            "backoffice/downloadables/downloads_table.html",
            {
                "rows": [
                    {
                        "grant": admin_link(r.grant, "grant"),
                        "customer": admin_link(r.grant.customer),
                        "downloads": r.downloads,
                        "last": when(r.last_downloaded_at),
                    }
                    for r in rows
                ],
                "more": len(rows) == DOWNLOADS_ON_PAGE,
            },
        )

    # The add page uploads through the service.

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            files = request.FILES  # parsed already (the CSRF check reads the form)
            facts = upload_facts(request)
            form = FileUploadForm(
                request.POST, files, admin_site=self.admin_site, too_large="file" in facts.too_large
            )
            if form.is_valid():
                data = form.cleaned_data
                try:
                    file = services.file_create(
                        organization=data["organization"],
                        upload=data["file"],
                        name=data["name"],
                        checksum_sha256=data["checksum_sha256"],
                        digest=facts.digests.get("file"),
                        actor=request.user,
                    )
                except ServiceError as exc:
                    form_add_service_error(form, exc)
                else:
                    messages.success(
                        request, format_html("File “{}” uploaded for {}.", file.name, file.organization)
                    )
                    return HttpResponseRedirect(
                        reverse("admin:downloadables_file_change", args=[quote(file.pk)])
                    )
        else:
            form = FileUploadForm(
                initial={"organization": request.GET.get("organization")}, admin_site=self.admin_site
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Upload a file",
            "form": form,
            "media": self.media + form.media,
            "cancel_url": reverse("admin:downloadables_file_changelist"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "backoffice/downloadables/file_add.html", context)
