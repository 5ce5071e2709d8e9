"""One variable per thing moves a second development instance, and `make run` refuses to
start one that would talk to the first (README, "A second instance")."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.core.management import call_command

from core.management.commands.seed_demo import Command as SeedDemo
from tests.redis_urls import TEST_CACHE_URL

ROOT = Path(__file__).resolve().parents[1]
INSTANCE_VARIABLES = ("WEB_PORT", "STRIPE_PORT", "DB_NAME", "REDIS_DB")
DERIVED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "RECUR_PUBLIC_URL",
    "STRIPE_API_HOST",
)
SHOW_SETTINGS = (
    "import json; from django.conf import settings as s; print(json.dumps({"
    "'public_url': s.RECUR_PUBLIC_URL, 'stripe': s.STRIPE_API_HOST, 'db': s.DATABASES['default']['NAME'],"
    "'cache': s.CACHES['default']['LOCATION'], 'broker': s.CELERY_BROKER_URL}))"
)


def clean_environment(**env: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k not in INSTANCE_VARIABLES + DERIVED}
    return {**keep, **env}


def settings_under(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHOW_SETTINGS],
        cwd=ROOT,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_defaults_are_the_first_instance():
    assert settings_under() == {
        "public_url": "http://localhost:8000",
        "stripe": "http://localhost:8420",
        "db": "recur",
        "cache": "redis://localhost:6379/0",
        "broker": "redis://localhost:6379/0",
    }


def test_each_variable_moves_its_thing():
    moved = settings_under(WEB_PORT="8100", STRIPE_PORT="8520", DB_NAME="recur2", REDIS_DB="3")
    assert moved == {
        "public_url": "http://localhost:8100",
        "stripe": "http://localhost:8520",
        "db": "recur2",
        "cache": "redis://localhost:6379/3",
        "broker": "redis://localhost:6379/3",
    }


def test_an_explicit_url_still_wins_for_production():
    moved = settings_under(WEB_PORT="8100", RECUR_PUBLIC_URL="https://billing.example.com")
    assert moved["public_url"] == "https://billing.example.com"


@pytest.mark.django_db
def test_the_setup_commands_take_the_public_url_of_the_instance(settings, capsys):
    settings.RECUR_PUBLIC_URL = "http://localhost:8100"
    call_command("setup_stripe_webhook", "--shell")
    exports = capsys.readouterr().out
    assert (
        f"LOCALSTRIPE_WEBHOOK_URL=http://localhost:8100/stripe/webhook/{settings.STRIPE_WEBHOOK_UUID}/"
        in exports
    )
    parser = SeedDemo().create_parser("manage.py", "seed_demo")
    assert parser.parse_args([]).base_url == "http://localhost:8100"


def test_the_procfile_takes_the_same_variables():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert procfile["web"].startswith(".venv/bin/gunicorn config.wsgi ")
    assert "${WEB_PORT:-8000}" in procfile["web"]
    assert "${STRIPE_PORT:-8420}" in procfile["localstripe"]
    assert "${DB_NAME:-recur}" in procfile["localstripe"]  # its store is the instance's own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/run.sh"], cwd=ROOT, env=clean_environment(**env), capture_output=True, text=True, timeout=30
    )


def test_make_run_refuses_a_taken_web_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_script(WEB_PORT=str(port), STRIPE_PORT=str(free_port()), DB_NAME="recur_second")
    assert result.returncode == 1
    assert f"port {port} is taken" in result.stderr and "WEB_PORT=" in result.stderr


def test_make_run_refuses_a_database_url_naming_another_database():
    result = run_script(
        WEB_PORT=str(free_port()),
        STRIPE_PORT=str(free_port()),
        DB_NAME="recur_second",
        DATABASE_URL="postgres://postgres@localhost:5432/recur",
    )
    assert result.returncode == 1
    assert "names another database than DB_NAME=recur_second" in result.stderr


def test_make_run_refuses_a_redis_database_another_instance_uses():
    url = urlsplit(TEST_CACHE_URL)
    number = url.path.strip("/") or "0"
    connection = redis.Redis(host=url.hostname, port=url.port or 6379, db=int(number))
    connection.set("recur:instance", "recur_first")
    try:
        result = run_script(
            WEB_PORT=str(free_port()), STRIPE_PORT=str(free_port()), DB_NAME="recur_second", REDIS_DB=number
        )
    finally:
        connection.delete("recur:instance")
    assert result.returncode == 1
    assert f"Redis database {number} is used by the instance with DB_NAME=recur_first" in result.stderr
