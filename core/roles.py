"""Operator roles: Django groups and the permissions each one holds.

``ROLES`` is the whole truth: ``roles_install()`` (``manage.py setup_roles``, run on every
deploy) makes each group hold exactly the permissions its patterns match, adding and
removing as needed. A pattern is ``"<app_label>.<codename>"`` where the codename may use
shell wildcards: ``"accounts.view_*"``, ``"accounts.*"``. A pattern without a wildcard
must name an existing permission.

When a feature adds models, add its app label to ``VIEW_APPS`` (everyone may look) and
give the roles their extra powers below, e.g. ``"orders.add_refund"`` for finance.
"""

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from django.contrib.auth.models import Group, Permission
from django.db import transaction

# Apps whose records every operator may look at.
VIEW_APPS: tuple[str, ...] = (
    "accounts",
    "core",
    "django_celery_beat",
    "payments",
    "catalog",
    "checkout",
    "orders",
    "subscriptions",
    "refunds",
    "disputes",
    "ledger",
    "events",
    "webhooks",
    "license_keys",
    "benefits",
    "downloadables",
)

# Apps an admin may do everything in.
ADMIN_APPS: tuple[str, ...] = (
    "accounts",
    "core",
    "django_celery_beat",
    "payments",
    "catalog",
    "checkout",
    "orders",
    "subscriptions",
    "refunds",
    "disputes",
    "ledger",
    "events",
    "webhooks",
    "license_keys",
    "benefits",
    "downloadables",
)


def _view_all() -> tuple[str, ...]:
    return tuple(f"{app}.view_*" for app in VIEW_APPS)


ROLES: dict[str, tuple[str, ...]] = {
    "support": (
        *_view_all(),
        "accounts.change_customer",
        "payments.replay_externalevent",
        # goodwill codes: create a discount for a customer, archive one that leaked
        "catalog.add_discount",
        "catalog.change_discount",
        # subscriptions: cancel / uncancel, pause / resume, extend a trial, correct a period end
        "subscriptions.change_subscription",
        "orders.change_order",  # retry an unpaid order's payment
        "webhooks.change_webhookdelivery",  # redeliver webhooks, send a test event
        "license_keys.change_licensekey",  # disable, enable, revoke a key; free an activation
        "benefits.change_benefitgrant",  # grant, revoke or retry a customer's grant
    ),
    "finance": (
        *_view_all(),
        "accounts.change_organization",  # billing settings: fees, payout hold, dunning
        "payments.replay_externalevent",
        "payments.ignore_externalevent",
        # the catalog: products, prices and discounts (deleting stays with admins)
        "catalog.add_product",
        "catalog.change_product",
        "catalog.add_discount",
        "catalog.change_discount",
        # subscriptions: what support may do, plus revoking now (delete_subscription) and what
        # bills the customer at once: plan and seat changes, ending a trial (add_billingentry)
        "subscriptions.change_subscription",
        "subscriptions.delete_subscription",
        "subscriptions.add_billingentry",
        "orders.change_order",  # retry an unpaid order's payment
        "refunds.add_refund",
        # manual corrections of a merchant's balance or a customer's wallet (with a reason)
        "ledger.adjust_balance",
        "events.change_eventhandling",  # retry a consumer that failed on an event
        "webhooks.change_webhookdelivery",  # redeliver webhooks, send a test event
        "license_keys.change_licensekey",  # disable, enable, revoke a key; free an activation
        # benefits: create and change them, set a product's, act on grants (deleting stays with admins)
        "benefits.add_benefit",
        "benefits.change_benefit",
        "benefits.change_benefitgrant",
    ),
    "admin": tuple(f"{app}.*" for app in ADMIN_APPS),
}


@dataclass
class RoleChange:
    role: str
    created: bool = False
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.created or bool(self.added) or bool(self.removed)


def _label(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def role_permissions(patterns: tuple[str, ...], available: list[Permission]) -> set[Permission]:
    """The permissions among ``available`` that the patterns match."""
    wanted: set[Permission] = set()
    for pattern in patterns:
        app_label, _, codename = pattern.partition(".")
        matched = {
            p
            for p in available
            if p.content_type.app_label == app_label and fnmatchcase(p.codename, codename)
        }
        if not matched and not any(ch in codename for ch in "*?["):
            raise LookupError(f"No permission {pattern!r}: check core.roles.ROLES.")
        wanted |= matched
    return wanted


@transaction.atomic
def roles_install(roles: dict[str, tuple[str, ...]] | None = None) -> list[RoleChange]:
    """Create the role groups and give each exactly its permissions. Safe to run again."""
    roles = ROLES if roles is None else roles
    available = list(Permission.objects.select_related("content_type"))
    changes = []
    for role, patterns in roles.items():
        group, created = Group.objects.select_for_update(of=("self",), no_key=True).get_or_create(name=role)
        wanted = role_permissions(patterns, available)
        current = set(group.permissions.select_related("content_type"))
        to_add, to_remove = wanted - current, current - wanted
        if to_add:
            group.permissions.add(*to_add)
        if to_remove:
            group.permissions.remove(*to_remove)
        changes.append(
            RoleChange(
                role=role,
                created=created,
                added=sorted(_label(p) for p in to_add),
                removed=sorted(_label(p) for p in to_remove),
            )
        )
    return changes
