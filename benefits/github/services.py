"""When a customer's GitHub username is set or changed, their GitHub grants follow: a grant
that gave up (no username yet, or a user GitHub did not know) is tried again now, and a
granted one invited under another username moves to the new one (removed, then invited).
A grant still retrying on its own (a 5xx, a rate limit) is left to its backoff: it reads the
username when it runs."""

from django.db import transaction
from django.db.models import Q

from accounts.models import Customer
from benefits import grants
from benefits.github.strategy import TYPE
from benefits.github.usernames import username_of
from benefits.models import BenefitGrant
from core import clock
from core.locks import lock_many

G = BenefitGrant.Status
W = BenefitGrant.Wanted


@transaction.atomic
def github_grants_follow_customers(*, customer_ids: list) -> list:
    """Retry or update the GitHub grants of these customers that their current username
    changes. Idempotent: once the grants are current, a second call finds nothing. Returns
    the ids of the grants given work."""
    usernames = {
        pk: username_of(metadata)
        for pk, metadata in Customer.objects.filter(pk__in=customer_ids).values_list("pk", "metadata")
    }
    usernames = {pk: name for pk, name in usernames.items() if name}
    if not usernames:
        return []
    candidates = BenefitGrant.objects.filter(
        customer_id__in=list(usernames), benefit__type=TYPE, wanted=W.GRANTED
    ).filter(Q(status=G.GRANTED) | (Q(next_attempt_at__isnull=True) & ~Q(error="")))
    now = clock.now()
    touched = []
    for grant in lock_many(BenefitGrant, list(candidates.values_list("pk", flat=True))):
        username = usernames[grant.customer_id]
        if grant.status == G.GRANTED:
            recorded = (grant.properties or {}).get("username") or ""
            if recorded.lower() == username.lower() or grant.update_requested:
                continue
            grant.update_requested = True
            grant.save(update_fields=["update_requested", "updated_at"])
        if grant.claimed_until is not None and grant.claimed_until > now:
            # A worker is calling GitHub for it now: the sweeper takes it after that claim.
            grant.next_attempt_at = grant.claimed_until
            grant.save(update_fields=["next_attempt_at", "updated_at"])
        else:
            grants.grant_retry_now(grant=grant)
        touched.append(grant.pk)
    return touched
