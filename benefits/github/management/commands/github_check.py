"""Check the GitHub settings: ``manage.py github_check acme/pro-sdk`` says whether the token
reaches the API and administers that repository (what repository access needs)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benefits.github.client import GitHubClient
from benefits.strategies import BenefitError


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("repository", help="owner/name")

    def handle(self, *args, repository: str, **options):
        owner, _, name = repository.partition("/")
        if not owner or not name:
            raise CommandError("Name the repository as owner/name.")
        try:
            with GitHubClient.from_settings() as client:
                found = client.repository(owner, name)
        except BenefitError as exc:  # not configured, refused, or GitHub down
            raise CommandError(str(exc)) from None
        admin = bool((found.get("permissions") or {}).get("admin"))
        self.stdout.write(f"{settings.RECUR_GITHUB_API_URL}: {found.get('full_name', repository)} found")
        if not admin:
            raise CommandError(f"The token has no admin rights on {repository}: it cannot invite.")
        self.stdout.write("admin rights: yes (collaborators can be invited and removed)")
