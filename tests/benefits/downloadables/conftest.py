import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from benefits import grants
from benefits import services as benefit_services
from benefits.downloadables import services as file_services
from benefits.models import BenefitGrant
from billing.orders.services import Line, order_create

LIMIT = 4096  # bytes: small, so oversized uploads stay cheap


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.RECUR_FILE_MAX_BYTES = LIMIT


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def make_file(org):
    def make(data: bytes = b"%PDF-1.7 manual", name: str = "manual.pdf", organization=None, **kwargs):
        upload = SimpleUploadedFile(name, data, content_type=kwargs.pop("content_type", "application/pdf"))
        return file_services.file_create(organization=organization or org, upload=upload, **kwargs)

    return make


@pytest.fixture
def make_benefit(org):
    def make(files, organization=None):
        return benefit_services.benefit_create(
            organization=organization or org,
            type="downloadables",
            description="Downloads",
            properties={"files": [str(f.pk) for f in files]},
        )

    return make


def process(grant_ids) -> None:
    for grant_id in grant_ids:
        grants.grant_process(grant_id=grant_id)


@pytest.fixture
def buy(org, customer, make_product):
    """A paid one-time order of a product unlocking ``benefit``, its grant processed."""

    def make(benefit) -> BenefitGrant:
        product = make_product("Ebook bundle")
        benefit_services.product_benefits_set(product=product, benefits=[benefit])
        order = order_create(
            organization=org,
            customer=customer,
            billing_reason="purchase",
            currency="usd",
            lines=[Line(label="Ebook bundle", amount=1900)],
            paid=True,
            product=product,
        )
        process(grants.grants_reconcile(order=order, reason="paid"))
        return BenefitGrant.objects.get(order=order, benefit=benefit)

    return make
