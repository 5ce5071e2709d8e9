"""``github_repository``: the customer is invited to a GitHub repository as a collaborator, and
removed (with any invitation not yet accepted) when the grant is revoked.

The customer's GitHub username comes from the customer's metadata ``github_username``; without
it the grant fails with a message saying so, and setting it later retries the grant
(``benefits.github.services``). A grant's properties record what was done, so revoking undoes
exactly that: ``{repository, username, permission, invitation_id, invitation_url}``.
Every call is idempotent on GitHub's side (PUT invites once, DELETE removes once), so a call
repeated after a crash does no harm.
"""

from rest_framework import serializers

from accounts.models import Customer
from benefits.github.client import GitHubClient, GitHubError, GitHubRetryableError, github_configured
from benefits.github.usernames import METADATA_KEY, username_of
from benefits.strategies import BenefitError, BenefitStrategy, register_strategy

TYPE = "github_repository"
PERMISSIONS = ("pull", "triage", "push", "maintain", "admin")
VALIDATE_TIMEOUT = 5.0  # seconds: checking a repository while a merchant waits


class GitHubRepositoryProperties(serializers.Serializer):
    repository_owner = serializers.RegexField(
        r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$",
        help_text="The user or organization owning the repository, e.g. 'acme'.",
    )
    repository_name = serializers.RegexField(
        r"^(?!\.\.?$)[A-Za-z0-9._-]{1,100}$", help_text="The repository's name, e.g. 'pro-sdk'."
    )
    permission = serializers.ChoiceField(
        choices=PERMISSIONS,
        default="pull",
        help_text="What the customer may do: pull (read), triage, push (write), maintain or admin.",
    )

    def validate(self, attrs):
        """When GitHub is configured, the repository must exist and the token administer it."""
        if github_configured()[0]:
            _check_repository(attrs["repository_owner"], attrs["repository_name"])
        return attrs


def _check_repository(owner: str, name: str) -> None:
    try:
        with GitHubClient.from_settings(timeout=VALIDATE_TIMEOUT) as client:
            repository = client.repository(owner, name)
    except GitHubRetryableError as exc:
        raise serializers.ValidationError(
            {"repository_name": [f"Could not check the repository now; try again. ({exc})"]}
        ) from None
    except GitHubError as exc:
        if exc.status == 404:
            message = f"No repository {owner}/{name} on GitHub (or the token cannot see it)."
        else:
            message = str(exc)
        raise serializers.ValidationError({"repository_name": [message]}) from None
    if not (repository.get("permissions") or {}).get("admin", True):
        raise serializers.ValidationError(
            {"repository_name": [f"The token has no admin rights on {owner}/{name}: it cannot invite."]}
        )


class GitHubRepositoryStrategy(BenefitStrategy):
    type = TYPE
    label = "GitHub repository access"
    description = (
        "Invites the customer (metadata github_username) to a GitHub repository as a collaborator; "
        "removes them when the grant is revoked."
    )
    properties_serializer = GitHubRepositoryProperties
    calls_out = True

    def is_configured(self) -> tuple[bool, str]:
        return github_configured()

    def grant(self, *, grant, benefit) -> dict:
        owner, name, permission = _target(benefit)
        username = _username(grant)
        if not username:
            raise BenefitError(
                f"The customer has no GitHub username: set metadata.{METADATA_KEY} "
                "(PATCH /v1/customers/{id}); the grant is retried when it is set."
            )
        with GitHubClient.from_settings() as client:
            return _invite(client, owner, name, username, permission)

    def revoke(self, *, grant, benefit) -> dict:
        recorded = grant.properties or {}
        owner, name, _ = _target(benefit)
        if recorded.get("repository"):
            owner, _, name = recorded["repository"].partition("/")
        # A grant that failed half-way recorded nothing: undo what it may have done.
        username = recorded.get("username") or _username(grant)
        if not username:
            return {}
        with GitHubClient.from_settings() as client:
            _remove(client, owner, name, username)
        return {"repository": f"{owner}/{name}", "username": username, "removed": True}

    def update(self, *, grant, benefit) -> dict:
        """The benefit's repository or permission changed, or the customer's username did."""
        recorded = grant.properties or {}
        owner, name, permission = _target(benefit)
        repository = f"{owner}/{name}"
        username = _username(grant) or recorded.get("username") or ""
        if not username:
            return dict(recorded)
        old_repository, old_username = recorded.get("repository"), recorded.get("username")
        same_place = old_repository == repository and (old_username or "").lower() == username.lower()
        if same_place and recorded.get("permission") == permission:
            return dict(recorded)
        with GitHubClient.from_settings() as client:
            if old_repository and old_username and not same_place:
                old_owner, _, old_name = old_repository.partition("/")
                _remove(client, old_owner, old_name, old_username)
            return _invite(client, owner, name, username, permission)

    def customer_view(self, *, grant, benefit) -> dict:
        recorded = grant.properties or {}
        return {
            "repository": recorded.get("repository"),
            "username": recorded.get("username"),
            "permission": recorded.get("permission"),
            "invitation_url": recorded.get("invitation_url"),
        }


def _target(benefit) -> tuple[str, str, str]:
    p = benefit.properties
    return p["repository_owner"], p["repository_name"], p.get("permission") or "pull"


def _username(grant) -> str:
    """Read now, not from a cached row: the merchant may just have set it."""
    metadata = Customer.objects.filter(pk=grant.customer_id).values_list("metadata", flat=True).first()
    return username_of(metadata)


def _invite(client: GitHubClient, owner: str, name: str, username: str, permission: str) -> dict:
    invitation = client.collaborator_add(owner, name, username, permission)
    return {
        "repository": f"{owner}/{name}",
        "username": username,
        "permission": permission,
        # None: they were a collaborator already (or joined straight away), nothing to accept.
        "invitation_id": invitation.get("id") if invitation else None,
        "invitation_url": invitation.get("html_url") if invitation else None,
    }


def _remove(client: GitHubClient, owner: str, name: str, username: str) -> None:
    """Remove the collaborator and delete every pending invitation of theirs."""
    client.collaborator_remove(owner, name, username)
    wanted = username.lower()
    pending = [
        invitation["id"]
        for invitation in client.invitations(owner, name)
        if ((invitation.get("invitee") or {}).get("login") or "").lower() == wanted
    ]
    for invitation_id in pending:
        client.invitation_delete(owner, name, invitation_id)


def register() -> None:
    register_strategy(GitHubRepositoryStrategy)
