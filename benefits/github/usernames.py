"""The customer's GitHub username: kept in the customer's metadata (``github_username``), set by
the merchant (``PATCH /v1/customers/{id}``) or in the backoffice."""

import re

METADATA_KEY = "github_username"
# GitHub's rule: 1 to 39 letters, digits or single hyphens, not starting or ending with one.
USERNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


def username_check(value: str) -> str | None:
    """Why ``value`` is no GitHub username, or None (an empty value clears it)."""
    if value == "" or USERNAME.match(value):
        return None
    return (
        "Not a GitHub username: 1 to 39 letters, digits or single hyphens, "
        "not starting or ending with a hyphen."
    )


def username_of(metadata: dict | None) -> str:
    value = (metadata or {}).get(METADATA_KEY) or ""
    return value.strip() if isinstance(value, str) else ""
