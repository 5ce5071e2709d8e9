"""Walk every /v1/ route with another organization's all-scopes token and prove that
nothing of the first organization can be read or changed.

Routes are discovered from the URL resolver, so routes added later are covered
without touching this file; their objects come from tests/tenancy.py.
"""

import json
import re

import pytest
from django.apps import apps
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern

from tests.tenancy import seed_everything

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
SKIP = {"openapi", "api-docs"}
GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def api_routes() -> list[tuple[str, list[str]]]:
    """(template, [kwarg names]) for every route under /v1/, e.g. ('customers/{pk}', ['pk'])."""
    v1 = next(
        p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "v1/"
    )
    routes = []
    for pattern in v1.url_patterns:
        if not isinstance(pattern, URLPattern) or pattern.name in SKIP or str(pattern.pattern) == "^.*$":
            continue
        raw = pattern.pattern._regex if isinstance(pattern.pattern, RegexPattern) else str(pattern.pattern)
        names = GROUP.findall(raw)
        template = GROUP.sub(lambda m: "{" + m.group(1) + "}", raw)
        template = template.replace("^", "").replace("$", "").replace("/?", "").replace("\\.", ".")
        if "(?P<format>" in raw or "{format}" in template:
            continue
        routes.append((template, names))
    return routes


def tenant_models() -> list[type[models.Model]]:
    return [
        m
        for m in apps.get_models()
        if any(f.name == "organization" and f.is_relation for f in m._meta.get_fields())
    ]


def snapshot(organization) -> dict:
    data = {"organization": list(type(organization).objects.filter(pk=organization.pk).values())}
    for model in tenant_models():
        data[model._meta.label] = sorted(
            (
                json.dumps(row, default=str, sort_keys=True)
                for row in model.objects.filter(organization=organization).values()
            ),
        )
    return data


def identifiers(organization) -> tuple[set[str], set[str]]:
    """Primary keys (must never appear in another tenant's responses) and other lookup values."""
    pks, lookups = {str(organization.pk)}, set()
    for model in tenant_models():
        for row in model.objects.filter(organization=organization).values():
            value = row["id"]
            if isinstance(value, int):  # bigint ids (events) are never shown: their public id is the uuid
                value = row["uuid"].hex if row.get("uuid") else None
            if value:
                pks.add(str(value))
            if row.get("external_id"):
                lookups.add(row["external_id"])
    return pks, lookups


def reference_body(organization) -> dict:
    """A write body pointing at the victim's objects under the usual reference names."""
    body = {}
    for model in tenant_models():
        first = model.objects.filter(organization=organization).first()
        if first is not None:
            name = model._meta.model_name
            body[name] = body[f"{name}_id"] = str(first.pk)
    return body


def test_routes_are_discovered():
    templates = [t for t, _ in api_routes()]
    assert "customers" in templates
    assert "customers/{pk}" in templates
    assert "organization" in templates


def test_another_organization_can_neither_read_nor_change_anything(make_org, make_api):
    victim, intruder = make_org("Victim"), make_org("Intruder")
    seed_everything(victim)
    seed_everything(intruder)
    client = make_api(intruder)
    client.raise_request_exception = True
    before = snapshot(victim)
    victim_pks, victim_lookups = identifiers(victim)
    body = reference_body(victim)

    calls = 0
    for template, names in api_routes():
        values = sorted(victim_pks | victim_lookups) if names else [None]
        for value in values:
            url = "/v1/" + (template.format(**{n: value for n in names}) if names else template)
            for method in METHODS:
                response = getattr(client, method)(
                    url, body if method in ("post", "put", "patch") else None, format="json"
                )
                calls += 1
                assert response.status_code < 500, (method, url, response.content[:300])
                text = response.content.decode(errors="replace")
                leaked = [pk for pk in victim_pks if pk in text]
                assert not leaked, f"{method.upper()} {url} leaked {leaked}: {text[:300]}"
                if value in victim_pks and response.status_code < 300 and method == "get":
                    pytest.fail(f"GET {url} answered {response.status_code} for the victim's id")

    assert calls > 20
    assert snapshot(victim) == before
