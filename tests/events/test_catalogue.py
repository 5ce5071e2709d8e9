"""The catalogue is documented and described from the registry: docs/webhooks.md is what the
command generates, the OpenAPI document has a webhook per registered type, and examples as
well as real events validate against their schemas."""

from pathlib import Path

import jsonschema
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from openapi_spec_validator import validate

from core.events import catalogue, services
from core.events.registry import REGISTRY
from tests.events.conftest import envelope_validator

WEBHOOKS_MD = Path(settings.BASE_DIR) / "docs" / "webhooks.md"
# The catalogue of issue #12; later features add theirs.
REQUIRED_TYPES = {
    "checkout.created",
    "checkout.updated",
    "checkout.expired",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "refund.created",
    "refund.updated",
    "dispute.created",
    "dispute.updated",
    "dispute.closed",
    "product.created",
    "product.updated",
    "discount.created",
    "discount.updated",
    "subscription.trial_will_end",
}


@pytest.fixture
def document(openapi_document):
    return openapi_document


_validator = envelope_validator


def test_docs_webhooks_md_is_what_the_command_generates(document):
    text = WEBHOOKS_MD.read_text()
    assert catalogue.catalogue_splice(text, catalogue.catalogue_markdown(document)) == text, (
        "docs/webhooks.md is out of date: run `manage.py events_catalogue --write docs/webhooks.md`"
    )


def test_the_check_command_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "webhooks.md"
    stale.write_text(f"# Webhooks\n\n{catalogue.BEGIN}\nold\n{catalogue.END}\n\nAfter.\n")
    with pytest.raises(CommandError, match="events_catalogue --write"):
        call_command("events_catalogue", check=str(stale))
    call_command("events_catalogue", write=str(stale))
    call_command("events_catalogue", check=str(stale))
    text = stale.read_text()
    assert text.startswith("# Webhooks\n") and text.endswith("After.\n") and "`refund.created`" in text


def test_every_registered_type_is_a_webhook_of_the_openapi_document(document):
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(REGISTRY.types) >= REQUIRED_TYPES
    assert set(document["webhooks"]) == set(REGISTRY.types)
    paid = document["webhooks"]["refund.created"]["post"]
    assert {p["name"] for p in paid["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    body = document["components"]["schemas"]["RefundCreatedEvent"]
    assert body["properties"]["data"]["$ref"] == "#/components/schemas/Refund"
    assert body["properties"]["type"]["enum"] == ["refund.created"]


def test_every_example_validates_against_its_schema(document):
    for event_type in REGISTRY.types:
        example = catalogue.envelope_example(document, event_type)
        errors = [e.message for e in _validator(document, event_type).iter_errors(example)]
        assert errors == [], (event_type, errors)
    expired = catalogue.envelope_example(document, "checkout.expired")
    assert expired["data"]["status"] == "expired"


def test_a_recorded_event_validates_against_its_schema(document, org, customer):
    with transaction.atomic():
        event = services.event_record(type="customer.updated", obj=customer)
    envelope = services.event_envelope(event)
    _validator(document, "customer.updated").validate(envelope)
    wrong = {**envelope, "type": "customer.created"}
    with pytest.raises(jsonschema.ValidationError):
        _validator(document, "customer.updated").validate(wrong)
