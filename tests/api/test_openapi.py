import pytest
from openapi_spec_validator import validate
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_openapi_document_validates_and_documents_errors():
    response = APIClient().get("/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert "/v1/customers" in schema["paths"]
    assert "/v1/organization" in schema["paths"]
    create = schema["paths"]["/v1/customers"]["post"]
    assert {"400", "401", "403", "409", "429"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert schema["components"]["securitySchemes"]["accessToken"]["scheme"] == "bearer"


def test_browsable_docs_are_served_without_a_cdn():
    response = APIClient().get("/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger" in html.lower()
    assert "cdn." not in html and "unpkg" not in html
