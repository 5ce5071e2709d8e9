import pytest
from django.contrib.auth.models import Group

from accounts.models import User
from core.roles import roles_install


@pytest.fixture
def make_staff(db):
    """A staff user in the given role groups (installed from core.roles)."""

    def make(*roles: str, email: str | None = None) -> User:
        roles_install()
        user = User.objects.create_user(
            email or f"{'-'.join(roles) or 'staff'}@recur.test", "pw", is_staff=True
        )
        user.groups.set(Group.objects.filter(name__in=roles))
        return user

    return make


@pytest.fixture
def htmx():
    """Headers of an htmx request."""
    return {"HTTP_HX_REQUEST": "true"}
