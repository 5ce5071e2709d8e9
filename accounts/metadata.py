"""Customer metadata keys that an app above gives a meaning to (``github_username`` for GitHub
repository access). That app registers a check at start-up; the customer services run it, so
the API answers a field error and the backoffice a form error, and nothing is saved.
Accounts knows no such app: it only runs what was registered."""

from collections.abc import Callable

from core.errors import InvalidInput

# key -> check(value) returning why the value is refused, or None.
CHECKS: dict[str, Callable[[str], str | None]] = {}


def register_customer_metadata_check(key: str, check: Callable[[str], str | None]) -> None:
    CHECKS[key] = check


def customer_metadata_problem(metadata: dict | None) -> tuple[str, str] | None:
    """(key, why) for the first registered key whose value is refused, or None."""
    for key, check in CHECKS.items():
        if metadata and key in metadata:
            value = metadata[key]
            why = check(value) if isinstance(value, str) else "Must be a string."
            if why:
                return key, why
    return None


def customer_metadata_check(metadata: dict | None) -> None:
    problem = customer_metadata_problem(metadata)
    if problem is not None:
        key, why = problem
        raise InvalidInput(why, field=f"metadata.{key}", code="invalid_metadata")
