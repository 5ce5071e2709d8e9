import jsonschema
import pytest

from core.events import catalogue, services
from core.events.schema import event_component_name


@pytest.fixture(scope="session")
def openapi_document(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return catalogue.openapi_document()


def envelope_validator(document: dict, event_type: str):
    """A JSON Schema validator of ``event_type``'s webhook body, from the OpenAPI document."""
    root = {"$ref": f"#/components/schemas/{event_component_name(event_type)}", **document}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def assert_matches_schema(openapi_document):
    """Asserts that events' envelopes validate against their OpenAPI components."""

    def check(events):
        for event in events:
            envelope_validator(openapi_document, event.type).validate(services.event_envelope(event))

    return check
