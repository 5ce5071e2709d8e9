"""Files: upload throughput, download latency and the cost of signed links, in-process.

    manage.py bench_downloads --mb 20 --downloads 200 --files 10

In a throwaway organization (everything it writes is rolled back; the bytes go to a
temporary folder), through Django's test client, so the whole request path runs without a
network: the upload handler's hashing, the temporary file, the storage copy, the link check,
the count and the streamed response. Each figure has its floor measured in the same run:

1. upload: POST /v1/files of ``--mb`` MB; floor: SHA-256 of the same bytes plus one copy
   to disk;
2. download: ``--downloads`` GETs of a 1 MB file through its signed link (each checked,
   counted and streamed); floor: the same request with a broken signature, refused before
   any query (the request path's fixed cost);
3. links: ``customer_view`` of a grant of ``--files`` files (one signed link each), the part
   of the customer's state this benefit adds.
"""

import hashlib
import logging
import os
import shutil
import statistics
import tempfile
import time

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test import Client, override_settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from accounts import services as account_services
from accounts.models import User
from benefits import grants
from benefits import services as benefit_services
from benefits.downloadables import services as file_services
from benefits.downloadables.links import download_link
from benefits.models import BenefitGrant
from benefits.strategies import strategy_for
from billing.catalog import services as catalog_services
from billing.orders.services import Line, order_create


class Rollback(Exception):
    pass


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--mb", type=int, default=20, help="size of the uploaded file")
        parser.add_argument("--downloads", type=int, default=200)
        parser.add_argument("--files", type=int, default=10, help="files in the benefit (links per view)")

    def handle(self, *args, mb: int, downloads: int, files: int, **options):
        logging.getLogger("django.request").setLevel(logging.ERROR)  # the floor's 403s are meant
        media = tempfile.mkdtemp(prefix="recur-bench-files-")
        try:
            limit = (mb + 1) * 1024 * 1024
            with override_settings(MEDIA_ROOT=media, RECUR_FILE_MAX_BYTES=limit), transaction.atomic():
                self._run(mb=mb, downloads=downloads, files=files, media=media)
                raise Rollback
        except Rollback:
            pass
        finally:
            shutil.rmtree(media, ignore_errors=True)

    def _run(self, *, mb: int, downloads: int, files: int, media: str) -> None:
        owner = User.objects.create_user(f"bench-files-{time.time_ns()}@recur.test", "pw")
        org = account_services.organization_create(name="Files benchmark", owner=owner)
        _, secret = account_services.access_token_create(
            organization=org, name="bench", scopes=["files:write"]
        )
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        data = os.urandom(mb * 1024 * 1024)

        started = time.perf_counter()
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(media, "floor.bin"), "wb") as out:
            out.write(data)
        floor = time.perf_counter() - started
        # The body is encoded before the clock starts: the server's work only.
        body = encode_multipart(
            BOUNDARY, {"file": SimpleUploadedFile("big.bin", data), "checksum_sha256": digest}
        )
        started = time.perf_counter()
        response = client.generic("POST", "/v1/files", body, content_type=MULTIPART_CONTENT)
        upload = time.perf_counter() - started
        assert response.status_code == 201, response.content
        self.stdout.write(
            f"upload {mb} MB: {upload * 1000:.0f} ms = {mb / upload:.0f} MB/s "
            f"(floor sha256 + one disk write: {floor * 1000:.0f} ms = {mb / floor:.0f} MB/s)"
        )

        customer = account_services.customer_create(organization=org, email="bench@example.com")
        small = [
            file_services.file_create(
                organization=org, upload=SimpleUploadedFile(f"file-{i}.bin", os.urandom(1024 * 1024))
            )
            for i in range(files)
        ]
        benefit = benefit_services.benefit_create(
            organization=org,
            type="downloadables",
            description="Bench downloads",
            properties={"files": [str(f.pk) for f in small]},
        )
        product = catalog_services.product_create(
            organization=org, name="Bench", prices=[{"currency": "usd", "type": "fixed", "amount": 100}]
        )
        benefit_services.product_benefits_set(product=product, benefits=[benefit])
        order = order_create(
            organization=org, customer=customer, billing_reason="purchase", currency="usd",
            lines=[Line(label="Bench", amount=100)], paid=True, product=product,
        )  # fmt: skip
        for grant_id in grants.grants_reconcile(order=order, reason="bench"):
            grants.grant_process(grant_id=grant_id)
        grant = BenefitGrant.objects.get(order=order)

        path = download_link(grant_id=grant.pk, file_id=small[0].pk).url.split("/downloads/", 1)[1]
        public = Client()
        timings, floors = [], []
        for _ in range(downloads):
            started = time.perf_counter()
            response = public.get(f"/downloads/{path}")
            body = b"".join(response.streaming_content)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200 and len(body) == 1024 * 1024
            started = time.perf_counter()
            assert public.get(f"/downloads/{path[:-2]}xx").status_code == 403
            floors.append(time.perf_counter() - started)
        self.stdout.write(
            f"download 1 MB x {downloads}: p50 {statistics.median(timings) * 1000:.2f} ms, "
            f"p99 {percentile(timings, 99) * 1000:.2f} ms "
            f"(floor, the same request refused at its signature, no query: "
            f"p50 {statistics.median(floors) * 1000:.2f} ms, p99 {percentile(floors, 99) * 1000:.2f} ms)"
        )

        strategy = strategy_for("downloadables")
        rounds = 2000
        started = time.perf_counter()
        for _ in range(rounds):
            strategy.customer_view(grant=grant, benefit=benefit)
        per_view = (time.perf_counter() - started) / rounds
        self.stdout.write(f"customer_view of {files} files (one signed link each): {per_view * 1e6:.0f} µs")
