"""The SELECT and ORDER BY clauses kept per query shape give the SQL Django's own compiler
gives, for kept shapes and for the ones that must not be kept (core/postgresql/compiler.py)."""

import pytest
from django.db import connection
from django.db.backends.postgresql.compiler import SQLCompiler as DjangoSQLCompiler
from django.db.models import Count, Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Lower

from accounts.models import AccessToken, Customer, Organization
from core.postgresql import compiler

pytestmark = pytest.mark.django_db


def _shapes(org):
    customers = Customer.objects.filter(organization=org)
    newer = Customer.objects.filter(
        organization=OuterRef("organization"), created_at__gt=OuterRef("created_at")
    )
    return {
        "filter, ordered": customers.filter(email__icontains="a").order_by("-created_at", "-id")[:21],
        "ordered by pk": customers.order_by("pk"),
        "model's own ordering": AccessToken.objects.filter(organization=org),
        "reversed": customers.order_by("created_at").reverse(),
        "last": customers.order_by("email", "id").reverse()[:1],
        "no ordering": customers.order_by(),
        "join in the filter": Customer.objects.filter(organization__name=org.name).order_by("-created_at"),
        "ordered across a relation": customers.order_by("organization__name", "id"),
        "ordered by a relation": customers.order_by("organization"),
        "ordered by an expression": customers.order_by(Lower("email").desc()),
        "subquery of the same model": customers.filter(pk__in=Subquery(customers.values("pk")[:5])),
        "exists over the same model": customers.filter(~Exists(newer)).order_by("-created_at"),
        "outer ref of the same model": customers.annotate(newer=Exists(newer)).filter(newer=True),
        "only": customers.only("email").order_by("email"),
        "only, other fields": customers.only("name", "created_at").order_by("-created_at"),
        "defer": customers.defer("metadata").order_by("email"),
        "select_related": customers.select_related("organization").order_by("-created_at"),
        "values": customers.values("email").order_by("email"),
        "values_list": customers.values_list("id", "created_at").order_by("-created_at"),
        "annotated": customers.annotate(n=Count("organization__customers")).order_by("-n"),
        "annotated, not selected": customers.alias(e=Lower("email")).order_by("e"),
        "extra": customers.extra(select={"one": "1"}).order_by("one"),
        "distinct": customers.distinct().order_by("email"),
        "union": customers.filter(name="a").union(customers.filter(name="b")).order_by("email"),
        "aggregate": customers.filter(email__gt=Value("a")).order_by("-created_at"),
        "sliced at an offset": customers.order_by(F("created_at").desc(), "id")[5:10],
        "count": customers.filter(name="x"),
    }


def _sql(queryset, compiler_class):
    query = queryset.query.chain()
    return compiler_class(query, connection, "default").as_sql()


def test_kept_clauses_give_djangos_sql(org):
    Customer.objects.create(organization=org, email="a@example.com", name="a")
    Customer.objects.create(organization=org, email="b@example.com", name="b")
    compiler._selects.clear()
    compiler._orderings.clear()
    for name, queryset in _shapes(org).items():
        expected = _sql(queryset, DjangoSQLCompiler)
        first, again = _sql(queryset, compiler.SQLCompiler), _sql(queryset, compiler.SQLCompiler)
        assert first == expected, name
        assert again == expected, name
        assert list(queryset.all()) == list(queryset.all()), name
    # The kept shapes are the plain ones, and there are some of each.
    assert (Customer, Customer._meta.db_table, (frozenset(), True), "default") in compiler._selects
    assert (Customer, Customer._meta.db_table, (frozenset({"email"}), False), "default") in compiler._selects
    assert any(kept is not None for kept in compiler._orderings.values())
    assert any(kept is None for kept in compiler._orderings.values())


def test_rows_are_the_same_whether_clauses_are_kept_or_not(org):
    other = Organization.objects.create(name="Other", slug="other")
    for i in range(5):
        Customer.objects.create(organization=org, email=f"c{i}@example.com", name=f"c{i}")
        Customer.objects.create(organization=other, email=f"o{i}@example.com")
    compiler._selects.clear()
    compiler._orderings.clear()
    page = Customer.objects.filter(organization=org).order_by("-created_at", "-id")
    cold = [(c.pk, c.email, c.created_at) for c in page[:3]]
    warm = [(c.pk, c.email, c.created_at) for c in page[:3]]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, email, created_at FROM accounts_customer WHERE organization_id = %s"
            " ORDER BY created_at DESC, id DESC LIMIT 3",
            [org.pk],
        )
        raw = [tuple(row) for row in cursor.fetchall()]
    assert cold == warm == raw
    assert Customer.objects.filter(organization=org).order_by("email").last().email == "c4@example.com"
