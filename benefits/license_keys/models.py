"""License keys: one per grant of a ``license_keys`` benefit, and their activations.

A key belongs to its grant (one key per grant, for the grant's life: a revoked grant granted
again re-enables the same key). ``status`` is what the merchant and the grant engine decide
(granted, disabled by the merchant, revoked with the grant); expiry, activation and usage
limits are checked when the key is validated or activated. The key itself is a secret the
customer holds: it is never logged, and the grant's properties (which webhooks carry) hold
only its id and a masked form.
"""

from django.db import models
from django.db.models import Q

from core.models import BaseModel


class LicenseKey(BaseModel):
    class Status(models.TextChoices):
        GRANTED = "granted"
        DISABLED = "disabled"
        REVOKED = "revoked"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    grant = models.OneToOneField(
        "benefits.BenefitGrant", on_delete=models.PROTECT, related_name="license_key"
    )
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="license_keys")
    benefit = models.ForeignKey("benefits.Benefit", on_delete=models.PROTECT, related_name="license_keys")
    key = models.CharField(max_length=100)
    # The benefit's prefix when the key was made (the masked form shows it).
    prefix = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.GRANTED)
    limit_activations = models.PositiveIntegerField(null=True, blank=True)
    # Live (not deactivated) activations, kept under the key's row lock with them.
    activations_count = models.PositiveIntegerField(default=0)
    limit_usage = models.PositiveBigIntegerField(null=True, blank=True)
    usage = models.PositiveBigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    validations = models.PositiveBigIntegerField(default=0)
    last_validated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The public API finds a key by (organization, key): this is its index too.
            models.UniqueConstraint(fields=["organization", "key"], name="licensekey_key_per_org"),
            models.CheckConstraint(
                condition=Q(limit_activations__isnull=True) | Q(limit_activations__gte=1),
                name="licensekey_limit_activations_positive",
            ),
            models.CheckConstraint(
                condition=Q(limit_usage__isnull=True) | Q(limit_usage__gte=1),
                name="licensekey_limit_usage_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="licensekey_org_created_idx"),
            models.Index(fields=["customer", "status"], name="licensekey_customer_idx"),
            models.Index(fields=["benefit", "status"], name="licensekey_benefit_idx"),
            # The backoffice finds keys by their first characters (LIKE 'PREFIX%').
            models.Index(fields=["key"], name="licensekey_key_prefix_idx", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return self.display_key

    @property
    def display_key(self) -> str:
        """The key masked but for its last four characters (safe for lists and payloads)."""
        return f"{self.prefix}-****-{self.key[-4:]}" if self.prefix else f"****-{self.key[-4:]}"


class LicenseKeyActivation(BaseModel):
    """One installation (a device, a seat) using a key. Deactivation marks it, so its history
    stays; only live activations count toward the key's limit. Labels need not be unique
    (two machines may share a name); the activation id is what the installation keeps."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    license_key = models.ForeignKey(LicenseKey, on_delete=models.PROTECT, related_name="activations")
    label = models.CharField(max_length=200)
    # Checked on every validation of this activation (e.g. a machine id): must match exactly.
    conditions = models.JSONField(default=dict, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["license_key", "deactivated_at"], name="licensekeyactivation_key_idx")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def is_live(self) -> bool:
        return self.deactivated_at is None
