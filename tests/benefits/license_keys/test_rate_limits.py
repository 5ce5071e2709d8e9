"""The public endpoints are limited to 3 requests a second per client address and per key
(429 with Retry-After); unknown keys count as failed guesses per address."""

from datetime import datetime, timedelta

import pytest
import time_machine

from tests.benefits.license_keys.test_public_api import VALIDATE, body, counters

pytestmark = pytest.mark.django_db

NOW = datetime.fromisoformat("2027-03-01T10:00:00+00:00")


@pytest.fixture
def three_a_second(settings):
    settings.RECUR_LICENSE_KEY_RATE = "3/s"


@pytest.fixture
def key(make_benefit, make_key):
    return make_key(make_benefit())


def test_per_address(public, key, make_benefit, make_key, three_a_second):
    others = [make_key(make_benefit()) for _ in range(3)]
    with time_machine.travel(NOW, tick=False):
        for k in [key, *others[:2]]:
            assert public.post(VALIDATE, body(k), format="json").status_code == 200
        before = counters(others[2])
        limited = public.post(VALIDATE, body(others[2]), format="json")  # a fourth key, same address
        assert limited.status_code == 429
        assert limited["Retry-After"] == "1"
        assert limited.json()["type"] == "rate_limit_error"
        assert counters(others[2]) == before
    with time_machine.travel(NOW + timedelta(seconds=1.5), tick=False):
        assert public.post(VALIDATE, body(others[2]), format="json").status_code == 200


def test_per_key_whatever_the_address(public, key, three_a_second):
    with time_machine.travel(NOW, tick=False):
        for n in range(3):
            response = public.post(VALIDATE, body(key), format="json", REMOTE_ADDR=f"10.0.0.{n + 1}")
            assert response.status_code == 200
        before = counters(key)
        limited = public.post(VALIDATE, body(key), format="json", REMOTE_ADDR="10.0.0.9")
        assert limited.status_code == 429 and limited["Retry-After"] == "1"
        assert counters(key) == before


def test_unknown_keys_are_failed_guesses(public, key, settings, api):
    settings.RECUR_LICENSE_KEY_GUESS_LIMIT = 5
    for n in range(5):
        wrong = body(key, key=f"WRONG-{n}")
        assert public.post(VALIDATE, wrong, format="json").status_code == 404
    # Over the limit, even the right key is refused from this address: a guesser learns nothing.
    refused = public.post(VALIDATE, body(key), format="json")
    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_failed_attempts")
    assert int(refused["Retry-After"]) >= 1
    assert public.post(VALIDATE, body(key), format="json", REMOTE_ADDR="10.0.0.2").status_code == 200
    # Counted apart from token guesses: the same address still reaches the token API.
    assert api.get("/v1/license-keys").status_code == 200
