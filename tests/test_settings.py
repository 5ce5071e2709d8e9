"""Production mode refuses development secrets and passes Django's deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "RECUR_ENV": "production",
    "DJANGO_SECRET_KEY": "p" * 30 + "-a-long-random-production-secret-value-x9",
    "DJANGO_ALLOWED_HOSTS": "billing.example.com",
    "STRIPE_LIVE_MODE": "true",
    "STRIPE_LIVE_SECRET_KEY": "sk_live_example",
    "STRIPE_WEBHOOK_SECRET": "whsec_production_example",
}


def python(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Runs Python in the project with only the given settings from the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_", "RECUR_"))}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return python("manage.py", *args, **env)


def test_deploy_check_is_clean_in_production():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **GOOD)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be off"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS"),
        ({"STRIPE_LIVE_SECRET_KEY": "", "STRIPE_LIVE_MODE": "false"}, "Stripe secret key"),
    ],
)
def test_production_refuses_development_settings(override, complaint):
    env = {k: v for k, v in {**GOOD, **override}.items() if v}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "Refusing to start in production" in result.stderr
    assert complaint in result.stderr


@pytest.mark.parametrize(("debug", "rescans"), [("true", "True"), ("false", "False")])
def test_static_files_are_looked_up_afresh_only_with_debug(debug, rescans):
    # With DEBUG off (the API benchmark) static files are served as production serves them.
    result = python(
        "-c",
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.WHITENOISE_USE_FINDERS, settings.WHITENOISE_AUTOREFRESH)",
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG=debug,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", rescans]


def test_a_web_worker_freezes_what_the_app_loaded():
    # config/gunicorn_conf.py's hook, as gunicorn calls it once the worker has loaded the app.
    result = python(
        "-c",
        "import gc; import config.wsgi; from config import gunicorn_conf; "
        "before = gc.get_freeze_count(); gunicorn_conf.post_worker_init(None); "
        "print(before, gc.get_freeze_count(), gc.get_count()[2])",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    assert result.returncode == 0, result.stderr
    before, frozen, oldest = map(int, result.stdout.split())
    assert before == 0
    assert frozen > 50_000  # Django, the URLconf, the models: all out of the collector's reach
    assert oldest == 0
