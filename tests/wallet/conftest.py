from tests.backoffice.conftest import htmx, make_staff  # noqa: F401 (fixtures shared with the backoffice tests)
