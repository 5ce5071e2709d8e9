"""A persistent connection the database dropped is replaced before a request uses it, and a
healthy one is reused without a query to check it (core/postgresql/base.py)."""

import io
import time

import psycopg
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def persistent_connections():
    # As served: connections kept between requests and checked before reuse. (The test
    # client skips the request signals that do this, so the requests below go through the
    # WSGI handler itself.)
    saved = {key: connection.settings_dict[key] for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    connection.settings_dict.update(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=True)
    connection.close()
    yield
    connection.settings_dict.update(saved)
    connection.close()


def _get(path: str, secret: str) -> str:
    statuses = []
    response = WSGIHandler()(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {secret}",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
        },
        lambda status, headers, exc_info=None: statuses.append(status),
    )
    b"".join(response)
    response.close()  # request_finished: the connection is kept, not closed
    return statuses[0]


def _backend_pid() -> int:
    return connection.connection.info.backend_pid


def _terminate(pid: int) -> None:
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(200):  # until the backend is gone
            if not other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.01)


def test_a_dropped_connection_is_replaced_and_a_healthy_one_reused(persistent_connections, org, make_token):
    _, secret = make_token(org)
    assert _get("/v1/customers", secret).startswith("200")
    first = _backend_pid()
    assert _get("/v1/customers", secret).startswith("200")
    assert _backend_pid() == first  # reused

    _terminate(first)
    assert _get("/v1/customers", secret).startswith("200")  # not a 500
    assert _backend_pid() != first


def test_an_idle_healthy_connection_is_usable_and_a_terminated_one_is_not(persistent_connections):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.is_usable()
    _terminate(_backend_pid())
    assert not connection.is_usable()
