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


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_", "RECUR_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


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
