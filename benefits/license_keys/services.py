"""Every change to license keys.

- The strategy's side (``license_key_issue/withdraw/renew/apply_benefit``), called by the
  grant engine inside its transaction with the grant locked; each is idempotent per grant.
- The merchant's and the operator's (``license_key_update``, ``license_key_revoke``,
  ``license_key_activation_deactivate``), audited.
- The customer's app, through the public API (``license_key_validate/activate/deactivate``):
  the key is the credential. A key that does not exist and a key of another organization
  get the same ``LicenseKeyNotFound``; a refusal writes nothing and counts nothing. Each
  runs under the key's row lock, so two activations at the limit cannot both pass and two
  usages cannot both take the last unit.
"""

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from benefits.license_keys import keys
from benefits.license_keys.models import LicenseKey, LicenseKeyActivation
from core import clock
from core.audit import audit_record
from core.errors import Conflict, Forbidden, InvalidInput, ServiceError
from core.locks import lock_one

S = LicenseKey.Status
UNSET: Any = object()  # "not given" (None means "no limit" / "never expires")
KEY_ATTEMPTS = 5  # fresh keys tried if one collides (80 random bits: never in practice)


class LicenseKeyNotFound(ServiceError):
    """No such key, or another organization's (the answer is the same: existence never leaks)."""

    status = 404
    type = "not_found_error"


def _not_found() -> LicenseKeyNotFound:
    return LicenseKeyNotFound("No such license key.", code="license_key_not_found")


# --- The grant engine's side ----------------------------------------------------------------


def _settings(benefit) -> dict:
    properties = benefit.properties or {}
    return {
        "limit_activations": (properties.get("activations") or {}).get("limit"),
        "limit_usage": properties.get("limit_usage"),
        "expires": properties.get("expires"),
    }


def _period_start(grant) -> datetime | None:
    subscription = grant.subscription if grant.subscription_id else None
    return subscription.current_period_start if subscription is not None else None


def _period_anchor(grant, fallback: datetime) -> datetime:
    """Expiry counts from the grant, or from the subscription's current period if later."""
    start = _period_start(grant)
    return max(fallback, start) if start else fallback


@transaction.atomic
def license_key_issue(*, grant, benefit) -> LicenseKey:
    """The grant's key: made on the first grant; a grant given again (after a revocation)
    re-enables the same key with the benefit's limits and a fresh expiry."""
    now = clock.now()
    wanted = _settings(benefit)
    expires_at = keys.expiry_from(wanted["expires"], now)
    existing = LicenseKey.objects.select_for_update().filter(grant=grant).first()
    if existing is not None:
        existing.status = S.GRANTED
        existing.limit_activations, existing.limit_usage = wanted["limit_activations"], wanted["limit_usage"]
        existing.expires_at = expires_at
        existing.save()
        return existing
    prefix = benefit.properties.get("prefix", "")
    for attempt in range(KEY_ATTEMPTS):
        try:
            with transaction.atomic():
                return LicenseKey.objects.create(
                    organization_id=grant.organization_id,
                    grant=grant,
                    customer_id=grant.customer_id,
                    benefit=benefit,
                    key=keys.key_generate(prefix=prefix, format=benefit.properties.get("format", "groups")),
                    prefix=prefix,
                    limit_activations=wanted["limit_activations"],
                    limit_usage=wanted["limit_usage"],
                    expires_at=expires_at,
                )
        except IntegrityError:
            if attempt == KEY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def license_key_withdraw(*, grant) -> LicenseKey | None:
    """The grant was revoked: so is its key (activations stay, for a later re-grant)."""
    key = LicenseKey.objects.select_for_update().filter(grant=grant).first()
    if key is not None and key.status != S.REVOKED:
        key.status = S.REVOKED
        key.save(update_fields=["status", "updated_at"])
    return key


@transaction.atomic
def license_key_renew(*, grant, benefit) -> LicenseKey:
    """A subscription renewed: an expiring key now runs to the new period's start plus the
    benefit's ttl (never shortened: a later date the merchant set stays)."""
    key = LicenseKey.objects.select_for_update().filter(grant=grant).first()
    if key is None:  # granted before this type made keys (cannot happen today): make it now
        return license_key_issue(grant=grant, benefit=benefit)
    expires = _settings(benefit)["expires"]
    if expires and key.expires_at is not None and key.status != S.REVOKED:
        renewed = keys.expiry_from(expires, _period_start(grant) or clock.now())
        if renewed > key.expires_at:
            key.expires_at = renewed
            key.save(update_fields=["expires_at", "updated_at"])
    return key


@transaction.atomic
def license_key_apply_benefit(*, grant, benefit) -> LicenseKey:
    """The benefit's settings changed: its limits and expiry rule now hold for this key
    (expiry counted from the grant or the current period's start). Status, usage and
    activations stay."""
    key = LicenseKey.objects.select_for_update().filter(grant=grant).first()
    if key is None:
        return license_key_issue(grant=grant, benefit=benefit)
    wanted = _settings(benefit)
    key.limit_activations, key.limit_usage = wanted["limit_activations"], wanted["limit_usage"]
    key.expires_at = keys.expiry_from(
        wanted["expires"], _period_anchor(grant, grant.granted_at or clock.now())
    )
    key.save(update_fields=["limit_activations", "limit_usage", "expires_at", "updated_at"])
    return key


# --- The merchant's and the operator's side -------------------------------------------------


def _audit(actor, action: str, key: LicenseKey, reason: str = "", **data) -> None:
    audit_record(
        actor=actor, action=action, target=key, organization=key.organization, reason=reason, data=data
    )


def _lock(key: LicenseKey) -> LicenseKey:
    return lock_one(LicenseKey.objects.select_related("organization", "benefit"), key.pk)


@transaction.atomic
def license_key_update(
    *,
    license_key: LicenseKey,
    status: str = UNSET,
    limit_activations: int | None = UNSET,
    limit_usage: int | None = UNSET,
    usage: int = UNSET,
    expires_at: datetime | None = UNSET,
    actor=None,
) -> LicenseKey:
    """Disable or enable a key, change its limits, its usage or its expiry. A revoked key is
    final (its grant was revoked, or the merchant revoked it): granting the benefit again
    re-enables it. A later change of the benefit's settings applies them over these."""
    key = _lock(license_key)
    if key.status == S.REVOKED:
        raise Conflict("The license key is revoked; it cannot change.", code="license_key_revoked")
    given = {
        name: value
        for name, value in (
            ("status", status),
            ("limit_activations", limit_activations),
            ("limit_usage", limit_usage),
            ("usage", usage),
            ("expires_at", expires_at),
        )
        if value is not UNSET
    }
    if "status" in given and given["status"] not in (S.GRANTED, S.DISABLED):
        raise InvalidInput("Use granted or disabled (revoke has its own action).", field="status")
    after_usage = given.get("usage", key.usage)
    after_limit = given.get("limit_usage", key.limit_usage)
    if after_limit is not None and after_usage > after_limit:
        field = "usage" if "usage" in given else "limit_usage"
        raise InvalidInput(f"Usage ({after_usage}) cannot exceed limit_usage ({after_limit}).", field=field)
    changed = {name: value for name, value in given.items() if getattr(key, name) != value}
    if not changed:
        return key
    before = {name: _plain(getattr(key, name)) for name in changed}
    for name, value in changed.items():
        setattr(key, name, value)
    key.save(update_fields=[*changed, "updated_at"])
    _audit(
        actor,
        "license_key.update",
        key,
        before=before,
        after={name: _plain(value) for name, value in changed.items()},
    )
    return key


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


@transaction.atomic
def license_key_revoke(*, license_key: LicenseKey, reason: str = "", actor=None) -> LicenseKey:
    """End the key for good: validation and activation are refused from now on. The grant
    stays (to take the benefit back as a whole, revoke the grant); granting the benefit
    again after a revocation of the grant makes the key live again."""
    key = _lock(license_key)
    if key.status == S.REVOKED:
        raise Conflict("The license key is already revoked.", code="license_key_revoked")
    key.status = S.REVOKED
    key.save(update_fields=["status", "updated_at"])
    _audit(actor, "license_key.revoke", key, reason=reason)
    return key


@transaction.atomic
def license_key_activation_deactivate(
    *, activation: LicenseKeyActivation, actor=None
) -> LicenseKeyActivation:
    """An operator frees an installation's seat (whatever the benefit lets the customer do)."""
    key = _lock(activation.license_key)
    activation = LicenseKeyActivation.objects.get(pk=activation.pk)
    if not activation.is_live:
        raise Conflict("The activation is already deactivated.", code="activation_deactivated")
    _deactivate(key, activation)
    _audit(actor, "license_key.deactivate", key, activation=str(activation.pk), label=activation.label)
    return activation


def _deactivate(key: LicenseKey, activation: LicenseKeyActivation) -> None:
    activation.deactivated_at = clock.now()
    activation.save(update_fields=["deactivated_at", "updated_at"])
    key.activations_count = max(0, key.activations_count - 1)
    key.save(update_fields=["activations_count", "updated_at"])


# --- The customer's app (public API) --------------------------------------------------------


def _find_locked(*, organization_id, key: str) -> LicenseKey:
    normalized = keys.key_normalize(key)
    pk = (
        LicenseKey.objects.filter(organization_id=organization_id, key=normalized)
        .values_list("pk", flat=True)
        .first()
    )
    found = lock_one(LicenseKey.objects.select_related("benefit"), pk) if pk else None
    if found is None:
        raise _not_found()
    return found


def _check_usable(key: LicenseKey, now: datetime) -> None:
    if key.status == S.REVOKED:
        raise Forbidden("The license key was revoked.", code="license_key_revoked")
    if key.status == S.DISABLED:
        raise Forbidden("The license key is disabled.", code="license_key_disabled")
    if key.expires_at is not None and now >= key.expires_at:
        raise Forbidden("The license key has expired.", code="license_key_expired")


def _live_activation(key: LicenseKey, activation_id) -> LicenseKeyActivation:
    activation = LicenseKeyActivation.objects.filter(
        license_key=key, pk=activation_id, deactivated_at__isnull=True
    ).first()
    if activation is None:
        raise LicenseKeyNotFound(
            "No such activation of this license key.", code="activation_not_found", field="activation_id"
        )
    return activation


@transaction.atomic
def license_key_validate(
    *,
    organization_id,
    key: str,
    activation_id=None,
    benefit_id=None,
    customer_id=None,
    increment_usage: int = 0,
    conditions: dict | None = None,
) -> tuple[LicenseKey, LicenseKeyActivation | None]:
    """Is this key usable now (and, if given, for this activation, benefit and customer)?
    Counts the validation and adds ``increment_usage`` to its usage, only when it is."""
    found = _find_locked(organization_id=organization_id, key=key)
    now = clock.now()
    if benefit_id is not None and found.benefit_id != benefit_id:
        raise _not_found()  # a key of another benefit is not the key asked about
    if customer_id is not None and found.customer_id != customer_id:
        raise _not_found()
    _check_usable(found, now)
    activation = None
    if activation_id is not None:
        activation = _live_activation(found, activation_id)
        if activation.conditions and (conditions or {}) != activation.conditions:
            raise Forbidden("The conditions differ from the activation's.", code="conditions_mismatch")
    if increment_usage and found.limit_usage is not None:
        remaining = found.limit_usage - found.usage
        if increment_usage > remaining:
            raise Forbidden(
                f"The license key has {remaining} usage left.",
                code="usage_limit_reached",
                field="increment_usage",
            )
    found.usage += increment_usage
    found.validations += 1
    found.last_validated_at = now
    found.save(update_fields=["usage", "validations", "last_validated_at", "updated_at"])
    return found, activation


@transaction.atomic
def license_key_activate(
    *, organization_id, key: str, label: str, conditions: dict | None = None, meta: dict | None = None
) -> LicenseKeyActivation:
    """Take one of the key's activation seats for an installation."""
    found = _find_locked(organization_id=organization_id, key=key)
    _check_usable(found, clock.now())
    if found.limit_activations is None:
        raise Forbidden(
            "This license key takes no activations: validate it instead.", code="activations_not_supported"
        )
    if found.activations_count >= found.limit_activations:
        raise Forbidden(
            f"The license key's {found.limit_activations} activations are all in use.",
            code="activation_limit_reached",
        )
    activation = LicenseKeyActivation.objects.create(
        organization_id=found.organization_id,
        license_key=found,
        label=label,
        conditions=conditions or {},
        meta=meta or {},
    )
    found.activations_count += 1
    found.save(update_fields=["activations_count", "updated_at"])
    activation.license_key = found
    return activation


@transaction.atomic
def license_key_deactivate(*, organization_id, key: str, activation_id) -> LicenseKeyActivation:
    """Free an installation's seat, when the benefit lets customers do so."""
    found = _find_locked(organization_id=organization_id, key=key)
    activation = _live_activation(found, activation_id)
    if not (found.benefit.properties.get("activations") or {}).get("customer_can_deactivate", True):
        raise Forbidden(
            "Activations of this license key are freed by the merchant only.", code="deactivation_not_allowed"
        )
    _deactivate(found, activation)
    return activation
