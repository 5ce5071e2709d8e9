from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import User
from core.api.scopes import ALL_SCOPES
from core.errors import ServiceError


class Command(BaseCommand):
    help = "Create an organization with an owner and an access token; prints the token once."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", help="set a password so the owner can log in")
        parser.add_argument("--currency", default="usd")
        parser.add_argument("--token-name", default="default")
        parser.add_argument("--scopes", default=",".join(ALL_SCOPES), help="comma-separated")

    def handle(self, *args, **opts):
        try:
            with transaction.atomic():
                owner = User.objects.filter(email=opts["owner_email"].lower()).first()
                if owner is None:
                    owner = User.objects.create_user(opts["owner_email"], opts["owner_password"])
                organization = services.organization_create(
                    name=opts["name"], owner=owner, default_currency=opts["currency"]
                )
                _token, secret = services.access_token_create(
                    organization=organization,
                    name=opts["token_name"],
                    scopes=[s.strip() for s in opts["scopes"].split(",") if s.strip()],
                )
        except (ServiceError, ValidationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"organization: {organization.name} ({organization.id})")
        self.stdout.write(f"owner:        {owner.email}")
        self.stdout.write(f"token:        {secret}")
        self.stdout.write("The token is shown only now; store it safely.")
