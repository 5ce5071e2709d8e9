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
