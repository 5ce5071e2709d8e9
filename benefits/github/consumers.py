"""GitHub grants follow the customer: ``customer.updated`` (their metadata's github_username
set or changed) retries or moves their GitHub grants."""

from benefits.github.services import github_grants_follow_customers
from core.events.registry import register_consumer


def github_on_customer_events(events) -> None:
    ids = list(dict.fromkeys(event.object_id for event in events))
    github_grants_follow_customers(customer_ids=ids)


def register() -> None:
    register_consumer(
        "github_access",
        types=["customer.updated"],
        handle=lambda event: github_on_customer_events([event]),
        handle_many=github_on_customer_events,
    )
