import shlex

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.payments.endpoints import webhook_endpoint_ensure
from core.errors import ServiceError


class Command(BaseCommand):
    help = "Create or update the platform's Stripe webhook endpoint row (idempotent) and print its URL."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url", default=settings.RECUR_PUBLIC_URL, help="default: RECUR_PUBLIC_URL (from WEB_PORT)"
        )
        parser.add_argument("--uuid", help="default: STRIPE_WEBHOOK_UUID")
        parser.add_argument("--secret", help="default: STRIPE_WEBHOOK_SECRET")
        parser.add_argument(
            "--shell", action="store_true", help="print LOCALSTRIPE_WEBHOOK_URL/SECRET exports for `make run`"
        )

    def handle(self, *args, base_url, uuid, secret, shell, **options):
        try:
            endpoint = webhook_endpoint_ensure(base_url=base_url, uuid=uuid, secret=secret)
        except ServiceError as exc:
            raise CommandError(exc.detail) from exc
        if shell:
            self.stdout.write(f"export LOCALSTRIPE_WEBHOOK_URL={shlex.quote(endpoint.url)}")
            self.stdout.write(f"export LOCALSTRIPE_WEBHOOK_SECRET={shlex.quote(endpoint.secret)}")
        else:
            self.stdout.write(endpoint.url)
