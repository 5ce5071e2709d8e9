"""``GET /downloads/<token>``: the public end of a signed download link (no access token).

The service checks the link and the grant and counts the download; this view streams the
bytes as an attachment with their SHA-256, or explains the refusal (JSON, or a short page
for a browser)."""

import base64

from django.http import FileResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from benefits.downloadables import services
from core.api.errors import error_body


class AttachmentResponse(FileResponse):
    # Chunks of 64 KiB where no server file wrapper (sendfile) takes over: 16x fewer than the default.
    block_size = 64 * 1024


@never_cache
@require_GET
def download(request, token: str):
    try:
        file, handle = services.download_open(token=token)
    except services.DownloadRefused as exc:
        return _refused(request, exc)
    response = AttachmentResponse(handle, as_attachment=True, filename=file.name, content_type=file.mime_type)
    response["X-Checksum-SHA256"] = file.checksum_sha256
    digest = base64.b64encode(bytes.fromhex(file.checksum_sha256)).decode()
    response["Digest"] = f"sha-256={digest}"  # RFC 3230
    response["Repr-Digest"] = f"sha-256=:{digest}:"  # RFC 9530
    response["X-Content-Type-Options"] = "nosniff"  # never rendered as a page, whatever its type
    response["Referrer-Policy"] = "no-referrer"  # the link is a credential
    return response


def _refused(request, exc: services.DownloadRefused):
    accept = request.headers.get("Accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return render(
            request,
            "downloadables/download_refused.html",
            {"detail": exc.detail, "code": exc.code},
            status=exc.status,
        )
    return JsonResponse(error_body(exc.status, exc.code, exc.detail, type_=exc.type), status=exc.status)
