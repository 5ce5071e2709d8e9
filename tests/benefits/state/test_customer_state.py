"""GET /v1/customers/{id}/state and /v1/customers/external/{external_id}/state.

Subscriptions and grants are written as the billing flows and the grant engine leave them
(one row per status), then read through the API; one test goes through a real purchase."""

from datetime import timedelta

import jsonschema
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings

from accounts import services as account_services
from benefits import services as benefit_services
from benefits.models import BenefitGrant
from benefits.state import customer_state
from benefits.strategies import REGISTRY, BenefitStrategy, register_strategy
from billing.checkout import services as checkout_services
from billing.orders.models import Order
from billing.subscriptions import services as subscription_services
from billing.subscriptions.models import Subscription
from core import clock

pytestmark = pytest.mark.django_db

S = Subscription.Status


@pytest.fixture
def plan(make_product):
    return make_product("Pro monthly", recurring="month")


@pytest.fixture
def buyer(org):
    return account_services.customer_create(
        organization=org,
        email="ada@example.com",
        name="Ada",
        external_id="user_42",
        metadata={"tier": "gold"},
    )


def subscribe(customer, product, status=S.ACTIVE, **fields) -> Subscription:
    """A subscription row as the billing flows leave it in ``status``."""
    now = clock.now()
    price = product.prices.get()
    return Subscription.objects.create(
        organization=customer.organization,
        customer=customer,
        product=product,
        price=price,
        status=status,
        currency=price.currency,
        amount=price.amount or 0,
        billing_anchor=now - timedelta(days=3),
        current_period_start=now - timedelta(days=3),
        current_period_end=now + timedelta(days=27),
        **fields,
    )


def benefit(org, type="feature_flag", description="Pro reports", **properties):
    defaults = {
        "feature_flag": {"key": "pro_reports", "metadata": {"max_reports": 10}},
        "custom": {"note": "Join us on the forum"},
        "meter_credit": {"meter": "api_calls", "units": 1000},
    }
    return benefit_services.benefit_create(
        organization=org, type=type, description=description, properties=properties or defaults[type]
    )


def grant(benefit, subscription, status="granted", wanted="granted", **fields) -> BenefitGrant:
    """A grant row as the engine leaves it (granted: done; pending: work queued)."""
    done = status == wanted
    return BenefitGrant.objects.create(
        organization=benefit.organization,
        benefit=benefit,
        customer=subscription.customer,
        subscription=subscription,
        status=status,
        wanted=wanted,
        granted_at=clock.now() if status == "granted" else None,
        next_attempt_at=None if done else clock.now(),
        **fields,
    )


def state_of(api, customer, **params):
    response = api.get(f"/v1/customers/{customer.pk}/state", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_subscriptions_shown_are_those_that_give_access_now(org, api, buyer, plan):
    now = clock.now()
    later, earlier = now + timedelta(days=5), now - timedelta(minutes=1)
    shown = {
        subscribe(buyer, plan, S.ACTIVE).pk: None,
        subscribe(buyer, plan, S.TRIALING, trial_end=later).pk: None,
        subscribe(buyer, plan, S.ACTIVE, cancel_at_period_end=True).pk: "period end",
        subscribe(buyer, plan, S.PAST_DUE, past_due_at=now, benefits_revoke_at=later).pk: later,
        subscribe(buyer, plan, S.UNPAID, benefits_revoke_at=later).pk: later,
        subscribe(buyer, plan, S.CANCELED, ended_at=now, benefits_revoke_at=later).pk: later,
    }
    hidden = [  # access is over, or never began
        subscribe(buyer, plan, S.PAST_DUE, past_due_at=now, benefits_revoke_at=earlier),
        subscribe(buyer, plan, S.PAST_DUE, past_due_at=now - timedelta(days=9)),  # revoked: cleared
        subscribe(buyer, plan, S.CANCELED, ended_at=now),
        subscribe(buyer, plan, S.INCOMPLETE),
        subscribe(buyer, plan, S.PAUSED, paused_at=now),
    ]

    state = state_of(api, buyer)

    rows = {row["id"]: row for row in state["active_subscriptions"]}
    assert set(rows) == {str(pk) for pk in shown}
    assert not {str(s.pk) for s in hidden} & set(rows)
    for pk, ends in shown.items():
        row = rows[str(pk)]
        if ends == "period end":
            assert (row["access_ends_at"], row["cancel_at_period_end"]) == (row["current_period_end"], True)
        else:
            assert row["access_ends_at"] == (ends and ends.isoformat().replace("+00:00", "Z"))
    some = rows[next(iter(rows))]
    price = plan.prices.get()
    assert {k: some[k] for k in ("product_id", "product_name", "price_id", "amount", "currency")} == {
        "product_id": str(plan.pk),
        "product_name": "Pro monthly",
        "price_id": str(price.pk),
        "amount": 2000,
        "currency": "usd",
    }
    assert (some["recurring_interval"], some["recurring_interval_count"]) == ("month", 1)
    trialing = next(r for r in rows.values() if r["status"] == "trialing")
    assert trialing["trial_end"] == later.isoformat().replace("+00:00", "Z")


def test_only_grants_granted_and_still_wanted_are_shown(org, api, buyer, plan):
    subscription = subscribe(buyer, plan)
    flag, note, credits = benefit(org), benefit(org, "custom", "Forum"), benefit(org, "meter_credit", "Calls")
    shown = [
        grant(flag, subscription),
        grant(note, subscription),
        grant(credits, subscription, properties={"meter": "api_calls", "credited": 1500, "cycles": 1}),
    ]
    for hidden_status, wanted in (("pending", "granted"), ("revoked", "revoked"), ("granted", "revoked")):
        grant(benefit(org, description=f"{hidden_status} {wanted}"), subscription, hidden_status, wanted)
    deleted = benefit(org, description="Deleted")
    grant(deleted, subscription)
    deleted.deleted_at = clock.now()
    deleted.save(update_fields=["deleted_at"])
    someone_else = account_services.customer_create(organization=org, email="other@example.com")
    grant(flag, subscribe(someone_else, plan))

    state = state_of(api, buyer)

    assert [b["id"] for b in state["granted_benefits"]] == [str(g.pk) for g in shown]
    by_type = {b["benefit_type"]: b for b in state["granted_benefits"]}
    assert by_type["feature_flag"]["properties"] == {"key": "pro_reports", "metadata": {"max_reports": 10}}
    assert by_type["custom"]["properties"] == {"note": "Join us on the forum"}
    assert by_type["meter_credit"]["properties"] == {"meter": "api_calls", "credited": 1500}
    assert {k: by_type["feature_flag"][k] for k in ("benefit_id", "description", "subscription_id")} == {
        "benefit_id": str(flag.pk),
        "description": "Pro reports",
        "subscription_id": str(subscription.pk),
    }
    assert state["meters"] == []
    assert {k: state[k] for k in ("id", "external_id", "email", "name", "metadata")} == {
        "id": str(buyer.pk),
        "external_id": "user_42",
        "email": "ada@example.com",
        "name": "Ada",
        "metadata": {"tier": "gold"},
    }


def test_by_external_id_answers_the_same(api, buyer, plan, org):
    grant(benefit(org), subscribe(buyer, plan))

    by_external = api.get("/v1/customers/external/user_42/state")

    assert by_external.status_code == 200
    assert by_external.json() == state_of(api, buyer)
    assert api.get(f"/v1/customers/{buyer.pk}/state/").status_code == 200  # the trailing slash too


def test_unknown_or_another_organizations_customer_is_404(api, make_org, make_product):
    other = make_org("Other")
    theirs = account_services.customer_create(
        organization=other, email="x@example.com", external_id="user_42"
    )
    grant(benefit(other), subscribe(theirs, make_product("Theirs", recurring="month", organization=other)))

    for path in (
        f"/v1/customers/{theirs.pk}/state",
        "/v1/customers/external/user_42/state",
        "/v1/customers/00000000-0000-0000-0000-000000000000/state",
        "/v1/customers/not-a-uuid/state",
        "/v1/customers/external/nobody/state",
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
        assert "granted_benefits" not in response.json()


def test_unknown_query_parameters_are_refused(api, buyer):
    response = api.get(f"/v1/customers/{buyer.pk}/state", {"expand": "everything"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "expand", "code": "invalid", "detail": "Unknown parameter for this endpoint."}
    ]
    assert api.get("/v1/customers/external/user_42/state", {"limit": 5}).status_code == 400


def test_needs_customers_read(org, make_api, buyer):
    assert make_api(org, scopes=["customers:read"]).get(f"/v1/customers/{buyer.pk}/state").status_code == 200
    refused = make_api(org, scopes=["benefits:read", "subscriptions:read"]).get(
        f"/v1/customers/{buyer.pk}/state"
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")


def queries(api, path) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert api.get(path).status_code == 200
    return len(captured)


def test_query_count_does_not_grow_with_grants_or_subscriptions(
    org, api, buyer, plan, django_assert_num_queries
):
    small = account_services.customer_create(organization=org, email="small@example.com")
    grant(benefit(org), subscribe(small, plan))
    for _ in range(4):
        subscription = subscribe(buyer, plan)
        for type_name in ("feature_flag", "custom", "meter_credit"):
            grant(benefit(org, type_name, f"{type_name} {subscription.pk}"), subscription)
    api.get(f"/v1/customers/{small.pk}/state")  # the token's first use writes last_used_at

    one = queries(api, f"/v1/customers/{small.pk}/state")
    twelve = queries(api, f"/v1/customers/{buyer.pk}/state")

    assert one == twelve
    assert len(state_of(api, buyer)["granted_benefits"]) == 12
    with django_assert_num_queries(2):  # the subscriptions, the grants with their benefits
        customer_state(customer=buyer)


class CountedStrategy(BenefitStrategy):
    """A type whose view reads another table: it loads it once for all grants."""

    type = "test_counted"
    label = "Counted"
    batches: list[list] = []

    def prepare_customer_views(self, grants):
        self.batches.append([g.pk for g in grants])
        owners = dict(
            BenefitGrant.objects.filter(pk__in=[g.pk for g in grants]).values_list("pk", "customer__email")
        )
        for g in grants:
            g.owner_email = owners[g.pk]

    def customer_view(self, *, grant, benefit):
        return {"owner": grant.owner_email}


@pytest.fixture
def counted_type():
    register_strategy(CountedStrategy)
    CountedStrategy.batches.clear()
    yield CountedStrategy
    del REGISTRY.strategies[CountedStrategy.type]


def test_a_strategy_prepares_all_its_views_at_once(org, api, buyer, plan, counted_type):
    subscription = subscribe(buyer, plan)
    counted = [
        benefit_services.benefit_create(organization=org, type="test_counted", description=f"C{i}")
        for i in range(3)
    ]
    grants = [grant(b, subscription) for b in counted]
    grant(benefit(org), subscription)

    state = state_of(api, buyer)

    assert counted_type.batches == [[g.pk for g in grants]]
    views = [b["properties"] for b in state["granted_benefits"] if b["benefit_type"] == "test_counted"]
    assert views == [{"owner": "ada@example.com"}] * 3


def openapi_document() -> dict:
    """The API's paths and components; the event webhooks are left out (their components are
    checked by tests/events, and benefit events need the benefits API's GET to be documented)."""
    hooks = [
        h for h in settings.SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] if "add_event_webhooks" not in h
    ]
    with patched_settings({"POSTPROCESSING_HOOKS": hooks}):
        return SchemaGenerator().get_schema(request=None, public=True)


def test_the_answer_matches_its_openapi_schema(org, api, buyer, plan):
    subscription = subscribe(buyer, plan, S.PAST_DUE, benefits_revoke_at=clock.now() + timedelta(days=2))
    grant(benefit(org), subscription)
    grant(benefit(org, "custom", "Forum"), subscription)
    document = openapi_document()
    operation = document["paths"]["/v1/customers/{id}/state"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert document["paths"]["/v1/customers/external/{external_id}/state"]["get"]["operationId"] == (
        "customers_external_state_retrieve"
    )

    validator = jsonschema.Draft202012Validator(
        {**schema, **document}, format_checker=jsonschema.FormatChecker()
    )
    validator.validate(state_of(api, buyer))
    validator.validate(
        state_of(api, account_services.customer_create(organization=org, email="e@example.com"))
    )


@pytest.mark.django_db(transaction=True)
def test_a_purchase_shows_in_the_state_and_a_revocation_takes_it_away(org, api, make_product):
    free = make_product("Free plan", recurring="month", prices=[{"currency": "usd", "type": "free"}])
    benefit_services.product_benefits_set(product=free, benefits=[benefit(org)])
    checkout = checkout_services.checkout_create(
        organization=org, product_id=free.pk, customer_email="new@example.com"
    )
    checkout_services.checkout_confirm(checkout=checkout)
    subscription = Subscription.objects.get()

    state = state_of(api, subscription.customer)

    assert [s["id"] for s in state["active_subscriptions"]] == [str(subscription.pk)]
    assert [b["properties"]["key"] for b in state["granted_benefits"]] == ["pro_reports"]

    lifetime = make_product("Lifetime extras", prices=[{"currency": "usd", "type": "free"}])
    benefit_services.product_benefits_set(product=lifetime, benefits=[benefit(org, "custom", "Extras")])
    one_time = checkout_services.checkout_create(
        organization=org, product_id=lifetime.pk, customer_id=subscription.customer_id
    )
    checkout_services.checkout_confirm(checkout=one_time)
    subscription_services.subscription_revoke(subscription=subscription, reason="fraud")

    state = state_of(api, subscription.customer)
    assert state["active_subscriptions"] == []
    (extras,) = state["granted_benefits"]  # the one-time purchase's stays
    order = Order.objects.get(product=lifetime)
    assert (extras["order_id"], extras["subscription_id"], extras["description"]) == (
        str(order.pk),
        None,
        "Extras",
    )
