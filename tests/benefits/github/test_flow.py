"""GitHub repository access end to end: localstripe purchases, the grant engine and the local
fake GitHub over real HTTP. After each step, re-running the jobs changes nothing."""

from datetime import datetime, timedelta

import pytest
import time_machine

from accounts import services as account_services
from benefits import services as benefit_services
from benefits.github.client import GitHubClient
from benefits.models import BenefitGrant
from benefits.strategies import strategy_for
from benefits.tasks import sweep_grants
from billing.checkout import services as checkout_services
from billing.subscriptions import dunning, renewals
from billing.subscriptions import services as subscription_services
from billing.subscriptions.models import Subscription
from core.events.models import Event
from core.events.services import events_sweep

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

START = datetime.fromisoformat("2027-03-01T10:00:00+00:00")
GOOD = "4242424242424242"


def card(stripe_client) -> str:
    return stripe_client.PaymentMethod.create(
        type="card", card={"number": GOOD, "exp_month": 12, "exp_year": 2035, "cvc": "123"}
    ).id


def state() -> list[tuple]:
    return sorted(
        BenefitGrant.objects.values_list(
            "status", "wanted", "next_attempt_at", "attempts", "error", "properties"
        )
    )


def run_jobs(when: datetime, fake=None) -> None:
    """Every job that moves grants, twice; a third pass changes nothing (nor calls GitHub to write)."""
    with time_machine.travel(when, tick=False):
        for _ in range(2):
            renewals.renewals_run()
            dunning.dunning_run()
            dunning.benefits_revoke_due()
            events_sweep()
            sweep_grants()
        before = (state(), Event.objects.count(), len(fake.requests) if fake else 0)
        renewals.renewals_run()
        dunning.dunning_run()
        dunning.benefits_revoke_due()
        events_sweep()
        sweep_grants()
        assert (state(), Event.objects.count(), len(fake.requests) if fake else 0) == before


@pytest.fixture
def repo_benefit(org, fake_github):
    benefit = benefit_services.benefit_create(
        organization=org,
        type="github_repository",
        description="Pro SDK source",
        properties={"repository_owner": "acme", "repository_name": "pro-sdk", "permission": "pull"},
    )
    fake_github.requests.clear()  # its creation checked the repository
    return benefit


@pytest.fixture
def monthly(make_product, repo_benefit):
    product = make_product("Monthly", recurring="month")
    benefit_services.product_benefits_set(product=product, benefits=[repo_benefit])
    return product


def buy(org, product, pm, *, customer=None, when=START):
    with time_machine.travel(when, tick=False):
        checkout = checkout_services.checkout_create(
            organization=org,
            product_id=product.pk,
            customer_id=customer.pk if customer else None,
            customer_email="" if customer else "buyer@example.com",
        )
        assert (
            checkout_services.checkout_confirm(checkout=checkout, payment_method_id=pm).status == "succeeded"
        )


@pytest.fixture
def octocat(org):
    return account_services.customer_create(
        organization=org, email="octo@example.com", metadata={"github_username": "octocat"}
    )


def test_purchase_invites_and_cancel_at_period_end_removes_at_the_end(
    org, monthly, stripe_client, octocat, fake_github
):
    buy(org, monthly, card(stripe_client), customer=octocat)
    grant = BenefitGrant.objects.get()
    repository = fake_github.repository("acme", "pro-sdk")
    (invitation,) = repository.invitations.values()
    assert (grant.status, grant.next_attempt_at, grant.error) == ("granted", None, "")
    assert grant.properties == {
        "repository": "acme/pro-sdk",
        "username": "octocat",
        "permission": "pull",
        "invitation_id": invitation["id"],
        "invitation_url": invitation["html_url"],
    }
    assert fake_github.calls() == ["PUT /repos/acme/pro-sdk/collaborators/octocat"]
    run_jobs(START + timedelta(minutes=5), fake_github)

    fake_github.accept("acme", "pro-sdk", "octocat")
    subscription = Subscription.objects.get()
    with time_machine.travel(START + timedelta(days=3), tick=False):
        subscription_services.subscription_cancel(subscription=subscription, reason="unused")
    end = subscription.current_period_end
    run_jobs(end - timedelta(minutes=5), fake_github)
    assert repository.collaborators == {"octocat": "pull"}  # not before the period's end
    run_jobs(end + timedelta(minutes=1), fake_github)
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("revoked", "subscription ended")
    assert repository.collaborators == {} and repository.invitations == {}
    assert Event.objects.filter(type="benefit_grant.revoked", object_id=str(grant.pk)).count() == 1


def test_revoke_now_deletes_a_pending_invitation(org, monthly, stripe_client, octocat, fake_github):
    fake_github.page_size = 1  # the invitation is on the second page
    fake_github.add_user("someone")
    repository = fake_github.repository("acme", "pro-sdk")
    buy(org, monthly, card(stripe_client), customer=octocat)
    fake_github.requests.clear()
    with GitHubClient.from_settings() as client:  # someone else's invitation stays
        client.collaborator_add("acme", "pro-sdk", "someone", "pull")
    subscription_services.subscription_revoke(subscription=Subscription.objects.get(), reason="fraud")
    grant = BenefitGrant.objects.get()
    assert grant.status == "revoked"
    assert [i["invitee"]["login"] for i in repository.invitations.values()] == ["someone"]
    assert "DELETE /repos/acme/pro-sdk/collaborators/octocat" in fake_github.calls()
    assert any(c.startswith("DELETE /repos/acme/pro-sdk/invitations/") for c in fake_github.calls())
    run_jobs(START + timedelta(days=1), fake_github)


def test_a_500_is_retried_with_backoff_then_succeeds(org, monthly, stripe_client, octocat, fake_github):
    fake_github.fail_next(500, times=2)
    buy(org, monthly, card(stripe_client), customer=octocat)
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.attempts) == ("pending", 1)
    assert "GitHub failed (500)" in grant.error
    assert grant.next_attempt_at == grant.errored_at + timedelta(seconds=30)
    with time_machine.travel(grant.next_attempt_at - timedelta(seconds=1), tick=False):
        sweep_grants()  # not due yet: nothing asked
    assert len(fake_github.requests) == 1
    with time_machine.travel(grant.next_attempt_at + timedelta(seconds=1), tick=False):
        sweep_grants()
    grant.refresh_from_db()
    assert (grant.status, grant.attempts) == ("pending", 2)
    assert grant.next_attempt_at == grant.errored_at + timedelta(seconds=60)  # doubled
    run_jobs(grant.next_attempt_at + timedelta(seconds=1), fake_github)
    grant.refresh_from_db()
    assert (grant.status, grant.attempts, grant.error, grant.next_attempt_at) == ("granted", 0, "", None)
    assert len(fake_github.repository("acme", "pro-sdk").invitations) == 1


def test_a_429_waits_as_long_as_github_says(org, monthly, stripe_client, octocat, fake_github):
    fake_github.fail_next(429, headers={"Retry-After": "600"}, message="secondary rate limit")
    buy(org, monthly, card(stripe_client), customer=octocat)
    grant = BenefitGrant.objects.get()
    assert grant.status == "pending" and "rate limit (429)" in grant.error
    assert grant.next_attempt_at == grant.errored_at + timedelta(seconds=600)
    run_jobs(grant.errored_at + timedelta(seconds=599), fake_github)
    assert BenefitGrant.objects.get().status == "pending"
    run_jobs(grant.errored_at + timedelta(seconds=601), fake_github)
    assert BenefitGrant.objects.get().status == "granted"


def test_missing_username_fails_then_setting_it_grants(org, monthly, stripe_client, fake_github, api):
    buy(org, monthly, card(stripe_client))
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.next_attempt_at) == ("pending", None)  # given up: not retryable
    assert "no GitHub username" in grant.error and "github_username" in grant.error
    assert fake_github.requests == []
    customer_id = str(grant.customer_id)
    run_jobs(START + timedelta(hours=1), fake_github)

    bad = api.patch(
        f"/v1/customers/{customer_id}", {"metadata": {"github_username": "-bad name"}}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "metadata.github_username"
    assert BenefitGrant.objects.get().status == "pending"

    ok = api.patch(
        f"/v1/customers/{customer_id}", {"metadata": {"github_username": "octocat"}}, format="json"
    )
    assert ok.status_code == 200
    grant.refresh_from_db()
    assert (grant.status, grant.error, grant.properties["username"]) == ("granted", "", "octocat")
    assert len(fake_github.repository("acme", "pro-sdk").invitations) == 1
    run_jobs(START + timedelta(hours=2), fake_github)

    # Another username moves the access: the old invitation goes, the new user is invited.
    api.patch(f"/v1/customers/{customer_id}", {"metadata": {"github_username": "hubot"}}, format="json")
    grant.refresh_from_db()
    assert (grant.status, grant.properties["username"]) == ("granted", "hubot")
    assert [
        i["invitee"]["login"] for i in fake_github.repository("acme", "pro-sdk").invitations.values()
    ] == ["hubot"]
    assert Event.objects.filter(type="benefit_grant.updated", object_id=str(grant.pk)).count() == 1
    # Changing another field retries nothing.
    calls = len(fake_github.requests)
    api.patch(f"/v1/customers/{customer_id}", {"name": "Hu Bot"}, format="json")
    run_jobs(START + timedelta(hours=3), fake_github)
    assert len(fake_github.requests) == calls


def test_changing_the_benefit_moves_every_holder(org, monthly, stripe_client, octocat, fake_github):
    fake_github.add_repository("acme", "pro-sdk-v2")
    buy(org, monthly, card(stripe_client), customer=octocat)
    fake_github.accept("acme", "pro-sdk", "octocat")
    benefit = BenefitGrant.objects.get().benefit
    benefit_services.benefit_update(
        benefit=benefit,
        properties={"repository_owner": "acme", "repository_name": "pro-sdk", "permission": "push"},
    )
    run_jobs(START + timedelta(minutes=1), fake_github)
    assert fake_github.repository("acme", "pro-sdk").collaborators == {"octocat": "push"}
    assert BenefitGrant.objects.get().properties["permission"] == "push"

    benefit_services.benefit_update(
        benefit=benefit,
        properties={"repository_owner": "acme", "repository_name": "pro-sdk-v2", "permission": "push"},
    )
    run_jobs(START + timedelta(minutes=2), fake_github)
    grant = BenefitGrant.objects.get()
    assert fake_github.repository("acme", "pro-sdk").collaborators == {}
    assert [
        i["invitee"]["login"] for i in fake_github.repository("acme", "pro-sdk-v2").invitations.values()
    ] == ["octocat"]
    assert (grant.status, grant.properties["repository"]) == ("granted", "acme/pro-sdk-v2")


def test_an_unknown_github_user_is_a_clear_error(org, monthly, stripe_client, fake_github):
    ghost = account_services.customer_create(
        organization=org, email="ghost@example.com", metadata={"github_username": "ghost"}
    )
    buy(org, monthly, card(stripe_client), customer=ghost)
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.next_attempt_at) == ("pending", None)
    assert "404" in grant.error and "does not exist" in grant.error
    fake_github.add_user("ghost")
    benefit_services.benefit_grant_retry(grant=grant)  # the operator's retry
    assert BenefitGrant.objects.get().status == "granted"


def test_a_repeated_call_invites_once(org, monthly, stripe_client, octocat, fake_github):
    """A worker that crashed after GitHub answered runs the grant again: still one invitation."""
    buy(org, monthly, card(stripe_client), customer=octocat)
    grant = BenefitGrant.objects.select_related("benefit").get()
    again = strategy_for("github_repository").grant(grant=grant, benefit=grant.benefit)
    assert again == grant.properties
    assert len(fake_github.repository("acme", "pro-sdk").invitations) == 1


def test_token_removed_then_restored(org, monthly, stripe_client, octocat, fake_github, settings):
    settings.RECUR_GITHUB_TOKEN = ""
    buy(org, monthly, card(stripe_client), customer=octocat)
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.next_attempt_at) == ("pending", None)
    assert grant.error == "GitHub is not configured: set RECUR_GITHUB_TOKEN"
    assert fake_github.requests == []
    settings.RECUR_GITHUB_TOKEN = fake_github.token
    benefit_services.benefit_grant_retry(grant=grant)
    assert BenefitGrant.objects.get().status == "granted"
    run_jobs(START + timedelta(hours=1), fake_github)
