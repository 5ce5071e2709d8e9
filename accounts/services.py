"""Rules for organizations, access tokens and customers."""

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils.text import slugify

from accounts import token_cache
from accounts.locks import customer_lock
from accounts.metadata import customer_metadata_check
from accounts.models import AccessToken, Customer, Membership, Organization, User, hash_token
from core import clock
from core.api.scopes import ALL_SCOPES
from core.audit import audit_record, json_safe
from core.errors import Conflict, InvalidInput
from core.events.services import event_record, event_record_if_changed, event_snapshot
from core.locks import lock_first, lock_one

TOKEN_PREFIX = "recur_at_"
LAST_USED_GRANULARITY = timedelta(minutes=1)


# --- organizations -------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _unique_invoice_prefix(name: str) -> str:
    letters = "".join(ch for ch in name.upper() if ch.isalnum())[:6].ljust(3, "X")
    prefix, n = letters, 1
    while Organization.objects.filter(invoice_prefix=prefix).exists():
        n += 1
        prefix = f"{letters[:8]}{n}"
    return prefix


def organization_named(name: str) -> Organization | None:
    """The organization already using ``name``, compared case-insensitively and trimmed."""
    name = name.strip()
    return Organization.objects.filter(name__iexact=name).first() if name else None


@transaction.atomic
def organization_create(
    *, name: str, owner: User | None = None, default_currency: str = "usd", **settings: Any
) -> Organization:
    """A new tenant. Its name is compared case-insensitively with existing ones: two "Acme"
    organizations would be told apart by operators only by their ids. Only creation checks:
    a rename through the API must not tell one tenant which names another uses."""
    name = name.strip()
    # Serializes creations of one name, so two at once cannot both pass the check.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"organization-name:{name.lower()}"])
    existing = organization_named(name)
    if existing is not None:
        raise Conflict(
            f"An organization named {existing.name!r} already exists ({existing.slug}); choose another name.",
            code="duplicate_name",
            field="name",
        )
    organization = Organization(
        name=name,
        slug=settings.pop("slug", None) or _unique_slug(name),
        invoice_prefix=settings.pop("invoice_prefix", None) or _unique_invoice_prefix(name),
        default_currency=default_currency,
        **settings,
    )
    organization.full_clean()
    organization.save()
    if owner is not None:
        Membership.objects.create(organization=organization, user=owner, role=Membership.Role.OWNER)
    return organization


ORGANIZATION_SETTINGS = (
    "name",
    "email",
    "default_currency",
    "invoice_prefix",
    "platform_fee_bps",
    "platform_fee_fixed",
    "payout_hold_days",
    "dunning_schedule",
    "benefit_grace_days",
    "proration_default",
    "payment_processor",
    "tax_behavior",
    "dunning_final_action",
    "dispute_fee",
    "dispute_revokes_access",
    "dispute_won_restores_access",
)


@transaction.atomic
def organization_update(
    *, organization: Organization, actor: User | None = None, **changes: Any
) -> Organization:
    organization = lock_one(Organization, organization.pk)
    unknown = set(changes) - set(ORGANIZATION_SETTINGS)
    if unknown:
        raise InvalidInput(f"Unknown setting {sorted(unknown)[0]!r}.", field=sorted(unknown)[0])
    before = {field: getattr(organization, field) for field in changes}
    for field, value in changes.items():
        setattr(organization, field, value)
    if (
        "invoice_prefix" in changes
        and Organization.objects.filter(invoice_prefix=organization.invoice_prefix)
        .exclude(pk=organization.pk)
        .exists()
    ):
        raise InvalidInput(
            "Another organization uses this invoice prefix.", code="unique", field="invoice_prefix"
        )
    organization.full_clean()
    organization.save()
    if actor is not None:
        audit_record(
            actor=actor,
            action="organization.update",
            target=organization,
            organization=organization,
            data=json_safe({"before": before, "after": changes}),
        )
    return organization


# --- access tokens ---------------------------------------------------------------


@transaction.atomic
def access_token_create(
    *,
    organization: Organization,
    name: str,
    scopes: list[str] | tuple[str, ...] = ALL_SCOPES,
    expires_at: datetime | None = None,
    created_by: User | None = None,
) -> tuple[AccessToken, str]:
    """Returns the token and its secret; the secret is never stored and never shown again."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise InvalidInput(f"Unknown scope {unknown[0]!r}.", field="scopes", code="unknown_scope")
    if expires_at is not None and expires_at <= clock.now():
        raise InvalidInput("The expiry must be in the future.", field="expires_at")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        organization=organization,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(secret),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        created_by=created_by,
    )
    if created_by is not None:
        audit_record(
            actor=created_by,
            action="access_token.create",
            target=token,
            organization=organization,
            data={"scopes": token.scopes},
        )
    return token, secret


def access_token_secret_plausible(secret: str) -> bool:
    return secret.startswith(TOKEN_PREFIX) and len(secret) <= 200


def access_token_authenticate(*, secret: str, epoch: bytes | None = None) -> AccessToken | None:
    """The active token with this secret, or None. Records use at most once a minute.

    Given the authentication ``epoch`` read from Redis, a token this process read under the
    same epoch is taken from memory (``accounts.token_cache``) instead of the database."""
    if not access_token_secret_plausible(secret):
        return None
    token_hash = hash_token(secret)
    token = token_cache.remembered(
        token_hash, epoch, token_model=AccessToken, organization_model=Organization
    )
    if token is None:
        token = AccessToken.objects.select_related("organization").filter(token_hash=token_hash).first()
        if token is None:
            return None
        if epoch is not None:
            token_cache.remember(token_hash, epoch, token)
    if not token.is_active:
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        # A use is not a change other processes must re-read: the epoch stays.
        AccessToken.objects.filter(pk=token.pk).update_keeping_epoch(last_used_at=now)
        token.last_used_at = now
        token_cache.note_last_used(token_hash, token)
    return token


@transaction.atomic
def access_token_revoke(*, token: AccessToken, actor: User | None, reason: str) -> AccessToken:
    if not reason.strip():
        raise InvalidInput("Say why the token is revoked.", field="reason", code="required")
    token = lock_one(AccessToken, token.pk)
    if token.revoked_at is not None:
        raise Conflict("This token is already revoked.", code="already_revoked")
    token.revoked_at = clock.now()
    token.save(update_fields=["revoked_at", "updated_at"])
    audit_record(
        actor=actor,
        action="access_token.revoke",
        target=token,
        organization=token.organization,
        reason=reason,
    )
    return token


# --- customers -------------------------------------------------------------------

CUSTOMER_FIELDS = (
    "external_id",
    "email",
    "name",
    "billing_address",
    "tax_id",
    "tax_id_type",
    "metadata",
)


def _check_external_id_free(*, organization: Organization, external_id: str | None, exclude=None) -> None:
    if external_id is None:
        return
    clash = Customer.objects.filter(organization=organization, external_id=external_id)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise InvalidInput(
            "A customer with this external_id exists; upsert it with PUT /v1/customers/external/{id}.",
            code="unique",
            field="external_id",
        )


def _save_customer(customer: Customer) -> Customer:
    # No savepoint of its own: the callers' atomic blocks roll the failed insert back (the
    # request's whole transaction, or their savepoint when nested), and a savepoint costs two
    # round trips on every write.
    try:
        customer.save()
    except IntegrityError as exc:  # a concurrent request took the external_id first
        raise InvalidInput(
            "A customer with this external_id exists.", code="unique", field="external_id"
        ) from exc
    return customer


def _audit_customer(actor: User | None, action: str, customer: Customer, data: dict | None = None) -> None:
    """Operators' changes are audited; an API client's are its merchant's own."""
    if actor is not None:
        audit_record(
            actor=actor,
            action=action,
            target=customer,
            organization=customer.organization,
            data=json_safe(data or {}),
        )


@transaction.atomic
def customer_create(
    *, organization: Organization, email: str, actor: User | None = None, **fields: Any
) -> Customer:
    fields = {k: v for k, v in fields.items() if k in CUSTOMER_FIELDS}
    customer_metadata_check(fields.get("metadata"))
    _check_external_id_free(organization=organization, external_id=fields.get("external_id"))
    customer = _save_customer(Customer(organization=organization, email=email.lower(), **fields))
    _audit_customer(actor, "customer.create", customer, {"email": customer.email, **fields})
    event_record(type="customer.created", obj=customer)
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, actor: User | None = None, **changes: Any) -> Customer:
    if "metadata" in changes:
        customer_metadata_check(changes["metadata"])
    customer = customer_lock(customer.pk)
    shown = event_snapshot(obj=customer)
    before = {field: getattr(customer, field) for field in changes if field in CUSTOMER_FIELDS}
    if "external_id" in changes:
        _check_external_id_free(
            organization=customer.organization, external_id=changes["external_id"], exclude=customer
        )
    for field, value in changes.items():
        if field in CUSTOMER_FIELDS:
            setattr(customer, field, value.lower() if field == "email" else value)
    customer = _save_customer(customer)
    _audit_customer(actor, "customer.update", customer, {"before": before, "after": changes})
    event_record_if_changed(type="customer.updated", obj=customer, before=shown)
    return customer


@transaction.atomic
def customer_upsert(*, organization: Organization, external_id: str, **fields: Any) -> tuple[Customer, bool]:
    """Create or update the customer with this external_id. Returns (customer, created)."""
    fields.pop("external_id", None)
    existing = lock_first(Customer.objects.filter(organization=organization, external_id=external_id))
    if existing is not None:
        return customer_update(customer=existing, **fields), False
    if not fields.get("email"):
        raise InvalidInput("An email is required to create a customer.", code="required", field="email")
    try:
        with transaction.atomic():
            return customer_create(organization=organization, external_id=external_id, **fields), True
    except InvalidInput:
        # A concurrent upsert created it between our read and our insert: update that one.
        existing = lock_first(Customer.objects.filter(organization=organization, external_id=external_id))
        return customer_update(customer=existing, **fields), False


@transaction.atomic
def customer_delete(*, customer: Customer, actor: User | None = None) -> None:
    customer = customer_lock(customer.pk)
    if customer is None:
        return  # already deleted
    _audit_customer(actor, "customer.delete", customer, {"email": customer.email})
    last_seen = event_snapshot(obj=customer)  # the payload: the customer as it was
    try:
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).delete()
    except (ProtectedError, RestrictedError) as exc:
        raise Conflict(
            "This customer has orders or subscriptions and cannot be deleted.", code="customer_in_use"
        ) from exc
    event_record(type="customer.deleted", obj=customer, data=last_seen)
