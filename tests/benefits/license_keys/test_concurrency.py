"""Two activations at the limit, at the same moment, on their own connections: exactly one
passes (the key's row lock), and usage cannot pass its limit either."""

import threading

import pytest
from django.db import connection

from benefits.license_keys import services
from benefits.license_keys.models import LicenseKey, LicenseKeyActivation
from core.errors import Forbidden

pytestmark = pytest.mark.django_db(transaction=True)


def race(calls: list) -> list:
    start = threading.Barrier(len(calls), timeout=10)
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            start.wait()
            outcomes[index] = call()
        except Exception as exc:  # the refusal is the outcome
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_activations_for_the_last_seat(make_benefit, make_key):
    key = make_key(make_benefit(activations={"limit": 1}))
    for _ in range(3):
        LicenseKeyActivation.objects.filter(license_key=key).delete()
        LicenseKey.objects.filter(pk=key.pk).update(activations_count=0)
        outcomes = race(
            [
                lambda n=n: services.license_key_activate(
                    organization_id=key.organization_id, key=key.key, label=f"machine {n}"
                )
                for n in range(2)
            ]
        )
        refusals = [o for o in outcomes if isinstance(o, Forbidden)]
        assert len(refusals) == 1 and refusals[0].code == "activation_limit_reached", outcomes
        assert LicenseKeyActivation.objects.filter(license_key=key).count() == 1
        assert LicenseKey.objects.get(pk=key.pk).activations_count == 1


def test_two_usages_for_the_last_units(make_benefit, make_key):
    key = make_key(make_benefit(limit_usage=5))
    outcomes = race(
        [
            lambda: services.license_key_validate(
                organization_id=key.organization_id, key=key.key, increment_usage=3
            )
            for _ in range(2)
        ]
    )
    assert sum(isinstance(o, Forbidden) for o in outcomes) == 1, outcomes
    key.refresh_from_db()
    assert (key.usage, key.validations) == (3, 1)
