import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.models import Customer
from core import clock
from core.models import IdempotencyRecord

KEY = {"HTTP_IDEMPOTENCY_KEY": "key-123"}


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_response(api, org):
    first = api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY)
    second = api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_same_key_other_body_is_a_conflict(api):
    api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY)
    response = api.post("/v1/customers", {"email": "b@example.com"}, format="json", **KEY)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_validation_errors_are_replayed_too(api):
    first = api.post("/v1/customers", {"email": "nope"}, format="json", **KEY)
    second = api.post("/v1/customers", {"email": "nope"}, format="json", **KEY)
    assert first.status_code == second.status_code == 400
    assert second.json() == first.json()


@pytest.mark.django_db
def test_keys_are_scoped_per_organization(api, make_org, make_api):
    other = make_api(make_org("Other"))
    assert api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY).status_code == 201
    assert other.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY).status_code == 201
    assert Customer.objects.count() == 2


@pytest.mark.django_db
def test_key_expires_after_24_hours(api):
    api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY)
    with time_machine.travel(clock.now() + timedelta(hours=24, seconds=1)):
        again = api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY)
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert Customer.objects.count() == 2


@pytest.mark.django_db
def test_server_errors_are_not_stored(api, monkeypatch):
    from accounts import api as accounts_api

    real = accounts_api.services.customer_create
    monkeypatch.setattr(accounts_api.services, "customer_create", lambda **kw: 1 / 0)
    api.raise_request_exception = False
    assert api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY).status_code == 500
    monkeypatch.setattr(accounts_api.services, "customer_create", real)
    assert api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY).status_code == 201
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_blank_or_overlong_key_is_a_field_error(api):
    for key in ["", "k" * 256]:
        response = api.post(
            "/v1/customers", {"email": "a@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not Customer.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_do_the_work_once(org, make_api, monkeypatch):
    from accounts import api as accounts_api

    real = services.customer_create

    def slow_create(**kwargs):
        time.sleep(0.4)  # widen the race window: the duplicate arrives while the first is working
        return real(**kwargs)

    monkeypatch.setattr(accounts_api.services, "customer_create", slow_create)
    clients = [make_api(org), make_api(org)]
    barrier = threading.Barrier(2)
    results = []

    def call(client):
        try:
            barrier.wait()
            response = client.post("/v1/customers", {"email": "race@example.com"}, format="json", **KEY)
            results.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in results] == [201, 201]
    assert results[0][1] == results[1][1]
    assert Customer.objects.filter(email="race@example.com").count() == 1
    assert IdempotencyRecord.objects.get().state == IdempotencyRecord.State.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_write_of_the_record_is_one_statement(api):
    """Claim and completion are each one query string (``SET LOCAL`` and the statement); a
    duplicate's failed claim leaves the connection usable, and the relaxed commit does not
    outlive its statement."""
    with CaptureQueriesContext(connection) as queries:
        first = api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY)
    assert first.status_code == 201
    writes = [q["sql"] for q in queries if "core_idempotencyrecord" in q["sql"]]
    assert [sql.split(";")[0] for sql in writes] == ["SET LOCAL synchronous_commit = off"] * 2
    assert [sql.split(";")[1].split()[0] for sql in writes] == ["INSERT", "UPDATE"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)

    replay = api.post("/v1/customers", {"email": "a@example.com"}, format="json", **KEY)
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    other = api.post("/v1/customers", {"email": "b@example.com"}, format="json", **KEY)
    assert other.status_code == 409
    with time_machine.travel(clock.now() + timedelta(hours=24, seconds=1)):
        again = api.post("/v1/customers", {"email": "b@example.com"}, format="json", **KEY)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Customer.objects.count() == 2
    record = IdempotencyRecord.objects.get()
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert record.response_status == 201 and record.response_body == again.json()
