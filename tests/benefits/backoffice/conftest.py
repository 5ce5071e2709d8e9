"""The backoffice fixtures (staff in roles) for the benefits pages."""

from tests.backoffice.conftest import make_staff  # noqa: F401
