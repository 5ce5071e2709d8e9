"""Files merchants upload for the ``downloadables`` benefit, and how often each grant
downloaded each file.

A file's bytes live in Django's default storage under ``storage_path`` (a name we make, never
the uploader's); ``name`` is what the customer's download is called. Archiving a file stops
its downloads and takes it out of every grant; the row and its bytes stay.
"""

from django.db import models
from django.db.models import Q

from core import clock
from core.models import BaseModel


class File(BaseModel):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=255, help_text="The download's file name.")
    mime_type = models.CharField(max_length=255)
    size = models.BigIntegerField(help_text="Bytes.")
    checksum_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the bytes, lowercase hex.")
    storage_path = models.CharField(max_length=500, unique=True)
    uploaded_at = models.DateTimeField(default=clock.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"], name="file_org_created_idx")]
        constraints = [models.CheckConstraint(condition=Q(size__gte=0), name="file_size_not_negative")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class DownloadCount(BaseModel):
    """Downloads of one file through one grant (the grant's total is the sum of its rows)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    grant = models.ForeignKey("benefits.BenefitGrant", on_delete=models.PROTECT, related_name="+")
    file = models.ForeignKey(File, on_delete=models.PROTECT, related_name="download_counts")
    downloads = models.PositiveBigIntegerField(default=0)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_downloaded_at"]
        constraints = [models.UniqueConstraint(fields=["grant", "file"], name="downloadcount_once")]
