"""The demo organization's benefits (``make run``): a license key and a feature flag on the
monthly plans, a note on the annual plan, the e-book's file, and a GitHub repository when
GitHub is configured. Granted to the existing buyers at once, so the backoffice, the API and
the customer state show them on the first visit."""

from django.core.files.uploadedfile import SimpleUploadedFile

from benefits import grants
from benefits import services as benefit_services
from benefits.downloadables.services import file_create
from benefits.models import Benefit, ProductBenefit
from billing.catalog.models import Product

E_BOOK = b"%PDF-1.4\n% The Billing Handbook: a demo file served through signed, expiring links.\n"


def _product(organization, name: str) -> Product | None:
    return Product.objects.filter(organization=organization, name=name).first()


def seed_benefits(organization) -> None:
    if Benefit.objects.filter(organization=organization).exists():
        return
    license_key = benefit_services.benefit_create(
        organization=organization,
        type="license_keys",
        description="Acme Pro license key",
        properties={"prefix": "ACME", "activations": {"limit": 3}},  # valid while the grant lasts
    )
    reports = benefit_services.benefit_create(
        organization=organization,
        type="feature_flag",
        description="Advanced reports",
        properties={"key": "advanced_reports", "metadata": {"exports_per_day": 50}},
    )
    onboarding = benefit_services.benefit_create(
        organization=organization,
        type="custom",
        description="Onboarding call",
        properties={"note": "Book your onboarding call at https://acme.test/onboarding."},
    )
    handbook = file_create(
        organization=organization,
        upload=SimpleUploadedFile("billing-handbook.pdf", E_BOOK, "application/pdf"),
    )
    download = benefit_services.benefit_create(
        organization=organization,
        type="downloadables",
        description="The Billing Handbook (PDF)",
        properties={"files": [str(handbook.pk)]},
    )
    plan = {
        "Acme Pro": [license_key, reports],
        "Acme Team": [license_key, reports],
        "Acme Pro (annual)": [license_key, reports, onboarding],
        "The Billing Handbook (e-book)": [download],
    }
    for name, benefits in plan.items():
        product = _product(organization, name)
        if product is not None:
            benefit_services.product_benefits_set(product=product, benefits=benefits)
    # The fan-out and the grants, now rather than when the worker gets to them.
    for link in ProductBenefit.objects.filter(organization=organization):
        while grants.product_benefit_sync(product_benefit_id=link.pk):
            pass
    for grant_id in grants.grants_due():
        grants.grant_process(grant_id=grant_id)
