import pytest

pytestmark = pytest.mark.django_db


def test_per_token_rate_limit_with_retry_after(settings, org, make_api):
    settings.RECUR_API_RATE_LIMIT = 3
    first, second = make_api(org), make_api(org)
    assert [first.get("/v1/customers").status_code for _ in range(3)] == [200, 200, 200]
    limited = first.get("/v1/customers")
    assert limited.status_code == 429
    assert limited.json()["type"] == "rate_limit_error"
    assert 1 <= int(limited["Retry-After"]) <= 60
    # the limit is per token: another token of the same organization is not affected
    assert second.get("/v1/customers").status_code == 200


def test_failed_token_guesses_are_limited_per_client_address(settings, org, make_token):
    from rest_framework.test import APIClient

    settings.RECUR_TOKEN_GUESS_LIMIT = 3
    _, secret = make_token(org)
    guesser = APIClient(REMOTE_ADDR="203.0.113.7")
    guesses = [
        guesser.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer recur_at_guess{n}").status_code
        for n in range(3)
    ]
    assert guesses == [401, 401, 401]
    limited = guesser.get("/v1/customers", HTTP_AUTHORIZATION="Bearer recur_at_guess4")
    assert limited.status_code == 429
    assert (limited.json()["type"], limited.json()["code"]) == (
        "rate_limit_error",
        "too_many_failed_attempts",
    )
    assert 1 <= int(limited["Retry-After"]) <= 61
    # while limited, even the right token gets 429 from there: the answer gives nothing away
    assert guesser.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 429
    assert guesser.get("/v1/customers", HTTP_AUTHORIZATION="Token nonsense").status_code == 429
    # another address is not affected, and successes never count
    other = APIClient(REMOTE_ADDR="198.51.100.1")
    assert [
        other.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code for _ in range(5)
    ] == [200] * 5


def test_the_limit_ends_with_its_window(settings, org, make_token):
    import time_machine
    from rest_framework.test import APIClient

    settings.RECUR_TOKEN_GUESS_LIMIT = 1
    _, secret = make_token(org)
    client = APIClient(REMOTE_ADDR="203.0.113.8")
    with time_machine.travel("2027-01-01T00:00:05Z", tick=False):
        assert client.get("/v1/customers", HTTP_AUTHORIZATION="Bearer recur_at_x").status_code == 401
        assert client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 429
    with time_machine.travel("2027-01-01T00:01:01Z", tick=False):
        assert client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_failed_checkout_client_secret_guesses_are_limited(settings, client):
    settings.RECUR_TOKEN_GUESS_LIMIT = 2
    assert [client.get(f"/v1/checkouts/client/cs_secret_guess{n}").status_code for n in range(2)] == [
        404,
        404,
    ]
    limited = client.get("/v1/checkouts/client/cs_secret_guess3")
    assert (limited.status_code, limited.json()["code"]) == (429, "too_many_failed_attempts")
    assert limited.has_header("Retry-After")


def test_the_count_expires_and_survives_redis_forgetting_its_script(settings, org, make_api):
    from django.core.cache import cache

    settings.RECUR_API_RATE_LIMIT = 3
    api = make_api(org)
    assert api.get("/v1/customers").status_code == 200
    client = cache._cache.get_client(write=True)
    [rate_key] = client.keys("*recur:rate:*")
    assert 0 < client.ttl(rate_key) <= 120  # the window's counter goes away on its own
    client.script_flush()  # as after a restart: the script is sent again, the count goes on
    assert [api.get("/v1/customers").status_code for _ in range(3)] == [200, 200, 429]
