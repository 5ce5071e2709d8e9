from tests.backoffice.conftest import htmx, make_staff  # noqa: F401  (backoffice fixtures)
