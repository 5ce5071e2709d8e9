"""/v1/files: upload (multipart), list, get and archive the files of downloadable benefits.

An upload is checked while it arrives (``uploads.CheckedUploadHandler``): over
``RECUR_FILE_MAX_BYTES`` it is a 413 on ``file`` and the rest of the body is not read; its
SHA-256 is computed on the way, and a ``checksum_sha256`` sent with it must match (400).
"""

import django_filters
from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from benefits.downloadables import services
from benefits.downloadables.models import DownloadCount, File
from benefits.downloadables.uploads import upload_facts
from billing.catalog.api import boolean_filter
from core.api.viewsets import IDEMPOTENCY_PARAMETER, OrganizationScopedViewSet

# What a multipart body may carry besides the file (boundaries, headers, name, checksum).
MULTIPART_OVERHEAD = 64 * 1024


class FileSerializer(serializers.ModelSerializer):
    checksum_sha256 = serializers.CharField(read_only=True, help_text="SHA-256 of the bytes, lowercase hex.")
    is_archived = serializers.BooleanField(read_only=True)
    downloads = serializers.IntegerField(
        read_only=True, default=0, help_text="Downloads of this file, through every grant."
    )

    class Meta:
        model = File
        fields = [
            "id", "name", "mime_type", "size", "checksum_sha256", "uploaded_at", "is_archived",
            "archived_at", "downloads", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class DownloadCountSerializer(serializers.ModelSerializer):
    grant_id = serializers.UUIDField(read_only=True)
    customer_id = serializers.UUIDField(source="grant.customer_id", read_only=True)
    downloads = serializers.IntegerField(
        read_only=True, help_text="Downloads of the file through this grant."
    )

    class Meta:
        model = DownloadCount
        fields = ["grant_id", "customer_id", "downloads", "last_downloaded_at", "created_at"]
        read_only_fields = fields


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The file's bytes (multipart/form-data).")
    name = serializers.CharField(
        max_length=services.NAME_MAX,
        required=False,
        allow_blank=True,
        help_text="The download's file name; defaults to the uploaded file's name.",
    )
    checksum_sha256 = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="The SHA-256 you computed (hex); a different file is refused with 400.",
    )


class FileFilter(django_filters.FilterSet):
    is_archived = boolean_filter(field_name="archived_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = File
        fields = ["is_archived"]


WRITE = {"parameters": [IDEMPOTENCY_PARAMETER]}


@extend_schema_view(
    list=extend_schema(description="Your files, newest first; `is_archived` filters."),
    retrieve=extend_schema(description="One file, with its download count."),
    create=extend_schema(
        request={"multipart/form-data": FileUploadSerializer},
        responses={201: FileSerializer},
        description="Upload a file (multipart/form-data: `file`, optional `name` and `checksum_sha256`). "
        "Over the size limit: 413 `file_too_large` on `file`. A `checksum_sha256` that does not "
        "match the bytes: 400 `checksum_mismatch`; nothing is stored.",
        **WRITE,
    ),
    downloads=extend_schema(
        responses=DownloadCountSerializer(many=True),
        description="How often each grant downloaded this file (grants that did: newest first).",
    ),
    destroy=extend_schema(
        responses={204: None},
        description="Archive the file: its download links stop working and it leaves every "
        "grant; benefits that list it must drop it before their files can be changed again.",
        **WRITE,
    ),
)
class FileViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrganizationScopedViewSet
):
    """Files for downloadable benefits."""

    scope_resource = "files"
    queryset = File.objects.all()
    serializer_class = FileSerializer
    filterset_class = FileFilter
    parser_classes = [MultiPartParser]
    http_method_names = ["get", "post", "delete", "head", "options"]
    paginated_actions = ("downloads",)

    def get_queryset(self):
        return super().get_queryset().annotate(downloads=Coalesce(Sum("download_counts__downloads"), 0))

    def check_permissions(self, request):
        super().check_permissions(request)
        if request.method == "POST":
            # A body announced larger than any allowed upload is refused before a byte is read
            # (after authentication, so a stranger learns nothing but 401).
            declared = request.META.get("CONTENT_LENGTH") or ""
            if declared.isdigit() and int(declared) > settings.RECUR_FILE_MAX_BYTES + MULTIPART_OVERHEAD:
                raise services.too_large_error()

    def create(self, request):
        data = request.data  # parsing runs the upload handler
        if "file" in upload_facts(request).too_large:
            raise services.too_large_error()
        body = FileUploadSerializer(data=data)
        body.is_valid(raise_exception=True)
        file = services.file_create(
            organization=self.organization,
            upload=body.validated_data["file"],
            name=body.validated_data.get("name", ""),
            checksum_sha256=body.validated_data.get("checksum_sha256", ""),
            digest=upload_facts(request).digests.get("file"),
            actor=request.auth,
        )
        return Response(
            FileSerializer(self.get_queryset().get(pk=file.pk)).data, status=status.HTTP_201_CREATED
        )

    def perform_destroy(self, instance):
        services.file_archive(file=instance, actor=self.request.auth)

    @action(detail=True, methods=["get"], filterset_class=None)
    def downloads(self, request, pk=None):
        file = self.get_object()
        rows = DownloadCount.objects.filter(file=file).select_related("grant").order_by("-created_at", "-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DownloadCountSerializer(page, many=True).data)
