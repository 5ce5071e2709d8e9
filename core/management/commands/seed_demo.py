from django.conf import settings
from django.core.management.base import BaseCommand

from core.demo import DEMO_STAFF, demo_seed


class Command(BaseCommand):
    help = "Seed a demo organization with data (idempotent) and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url", default=settings.RECUR_PUBLIC_URL, help="default: RECUR_PUBLIC_URL (from WEB_PORT)"
        )

    def handle(self, *args, base_url: str, **options):
        result = demo_seed()
        lines = [
            # `make run` (scripts/run.sh) prints these lines under "Recur is ready." once every
            # process answers; run alone, the command only seeds.
            "Demo data seeded.",
            f"  Backoffice   {base_url}/backoffice/",
            f"               login {result.operator_email} / {result.password}"
            f"  (also {', '.join(DEMO_STAFF)} with the same password)",
            f"  API          {base_url}/v1/   docs {base_url}/v1/docs/   schema {base_url}/v1/openapi.json",
            f"  API token    {result.token}   (organization: {result.organization.name})",
            f"  Try          curl -H 'Authorization: Bearer {result.token}' {base_url}/v1/customers",
        ]
        self.stdout.write("\n".join(lines))
