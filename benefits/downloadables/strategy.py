"""``downloadables``: files the customer downloads through signed links that expire.

The benefit lists file ids of its organization (``properties.files``); a grant records the
files it gives (``{"files": [{id, name, size, checksum_sha256, mime_type}]}``), which an
update (the benefit's list changed, a file was archived) brings in line. A revoked grant
keeps that record, but its links stop working: every download checks the grant
(``services.download_open``). The customer's state shows each file with a fresh signed link.
"""

import uuid

from rest_framework import serializers

from benefits.downloadables.links import download_links
from benefits.downloadables.models import File
from benefits.strategies import BenefitStrategy, register_strategy

FILES_MAX = 100


class DownloadablesProperties(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=FILES_MAX,
        help_text="Ids of your files (POST /v1/files), in the order the customer sees them.",
    )

    def validate_files(self, value: list[str]) -> list[str]:
        ids = []
        for raw in value:
            try:
                ids.append(str(uuid.UUID(raw)))
            except ValueError:
                raise serializers.ValidationError(f"Not a file id: {raw!r}.", code="invalid") from None
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("A file is listed twice.", code="duplicate")
        organization = self.context.get("organization")
        if organization is None:  # files belong to an organization: never check without one
            raise serializers.ValidationError("The benefit's organization is unknown.", code="invalid")
        archived = dict(
            File.objects.filter(organization=organization, pk__in=ids).values_list("pk", "archived_at")
        )
        archived = {str(pk): at for pk, at in archived.items()}
        for file_id in ids:
            if file_id not in archived:
                raise serializers.ValidationError(f"No such file: {file_id}.", code="not_found")
            if archived[file_id] is not None:
                raise serializers.ValidationError(f"The file {file_id} is archived.", code="file_archived")
        return ids


def benefit_files(benefit) -> list[dict]:
    """The benefit's files that can be downloaded now, in its order."""
    ids = benefit.properties.get("files") or []
    rows = {
        str(f.pk): f
        for f in File.objects.filter(
            organization_id=benefit.organization_id, pk__in=ids, archived_at__isnull=True
        )
    }
    return [
        {
            "id": file_id,
            "name": rows[file_id].name,
            "size": rows[file_id].size,
            "checksum_sha256": rows[file_id].checksum_sha256,
            "mime_type": rows[file_id].mime_type,
        }
        for file_id in ids
        if file_id in rows
    ]


@register_strategy
class DownloadablesStrategy(BenefitStrategy):
    type = "downloadables"
    label = "Downloadables"
    description = "Files the customer downloads through signed links that expire."
    properties_serializer = DownloadablesProperties

    def grant(self, *, grant, benefit) -> dict:
        return {"files": benefit_files(benefit)}

    def update(self, *, grant, benefit) -> dict:
        return {"files": benefit_files(benefit)}

    def customer_view(self, *, grant, benefit) -> dict:
        entries = grant.properties.get("files") or []
        links = download_links(grant_id=grant.pk, file_ids=[entry["id"] for entry in entries])
        return {
            "files": [
                {**entry, "download_url": link.url, "expires_at": link.expires_at.isoformat()}
                for entry, link in zip(entries, links, strict=True)
            ]
        }
