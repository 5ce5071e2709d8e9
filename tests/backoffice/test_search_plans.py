"""Backoffice search boxes find rows through indexes, never by reading a table whole (issue 11)."""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from accounts.bench_population import customer_email, customer_name
from accounts.models import Customer
from billing.checkout.models import Checkout
from billing.disputes.models import Dispute
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.subscriptions.models import Subscription
from tests.plans import plan_without_seqscan, seq_scanned

pytestmark = pytest.mark.django_db

BY_CUSTOMER = [Order, Subscription, Payment, Checkout, Dispute]


def searched(model, term: str, operator):
    request = RequestFactory().get("/", {"q": term})
    request.user = operator
    model_admin = admin.site._registry[model]
    queryset, _ = model_admin.get_search_results(request, model_admin.get_queryset(request), term)
    return queryset


@pytest.mark.parametrize(
    "term",
    [
        customer_email(321),
        customer_email(321).split("@")[0][-8:],
        customer_name(5),
        f'"{customer_name(5)}"',
        "crm_4567",
    ],
    ids=["email", "part of an email", "name", "quoted full name", "external id"],
)
def test_customer_search(crowd, operator, term):
    queryset = searched(Customer, term, operator)

    words = [term.strip('"')] if term.startswith('"') else term.split()
    assert queryset.exists()
    assert all(
        any(w.lower() in f"{c.email} {c.name} {c.external_id}".lower() for w in words) for c in queryset
    )
    plan = plan_without_seqscan(queryset)
    assert "trgm_idx" in plan or "customer_email_idx" in plan, plan
    assert not seq_scanned(plan), plan


@pytest.mark.parametrize("model", BY_CUSTOMER, ids=lambda m: m.__name__)
@pytest.mark.parametrize(
    "term", [customer_email(321).upper(), customer_email(321).split("@")[0][-8:]], ids=["email", "word"]
)
def test_search_by_customer(crowd, operator, model, term):
    # The customers are looked up first (test_customer_search shows through which indexes),
    # then the rows by their customer_id.
    plan = plan_without_seqscan(searched(model, term, operator))

    assert "customer_id = " in plan or "customer_id = ANY" in plan, plan
    assert not seq_scanned(plan), plan


@pytest.mark.parametrize("term", ["pi_123abc", "ch_123abc", "order:4b1c0e9e-0000-4000-8000-000000000000"])
def test_payment_search_by_processor_id_or_reference(db, operator, term):
    plan = plan_without_seqscan(searched(Payment, term, operator))

    assert not seq_scanned(plan) and "upper(" not in plan, plan
