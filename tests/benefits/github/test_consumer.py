"""The ``customer.updated`` consumer costs a constant few queries per batch, however many
customers it carries and whether or not they hold GitHub grants."""

from types import SimpleNamespace

import pytest

from accounts import services as account_services
from benefits.github.consumers import github_on_customer_events

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [1, 200])
def test_a_batch_costs_two_queries_whatever_its_size(org, django_assert_num_queries, count):
    customers = [
        account_services.customer_create(
            organization=org, email=f"c{n}@example.com", metadata={"github_username": f"user{n}"}
        )
        for n in range(count)
    ]
    events = [SimpleNamespace(object_id=str(c.pk)) for c in customers] * 2  # duplicates too
    # customers, grants (the savepoint and its release travel with them): the same for 1 or 200
    with django_assert_num_queries(2):
        github_on_customer_events(events)


def test_customers_without_a_username_cost_one_query(org, django_assert_num_queries):
    customer = account_services.customer_create(organization=org, email="plain@example.com")
    with django_assert_num_queries(1):  # customers (with the savepoint): no grant query
        github_on_customer_events([SimpleNamespace(object_id=str(customer.pk))])
