import hashlib

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Func, Q
from django.db.models.functions import Lower, Upper

from accounts import token_cache
from billing.money import is_supported_currency
from core import clock
from core.audit import Actor
from core.models import AuditEntry, BaseModel


def currency_validator(value: str) -> None:
    if not (len(value) == 3 and value.islower() and is_supported_currency(value)):
        raise ValidationError("Use a lowercase ISO 4217 currency code, e.g. usd.", code="invalid_currency")


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in: an operator of the platform or a member of an organization."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_staff = models.BooleanField(default=False, help_text="May log into the backoffice.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=clock.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class ProrationBehavior(models.TextChoices):
    INVOICE = "invoice", "Invoice now"
    PRORATE = "prorate", "Prorate onto the next order"
    NEXT_PERIOD = "next_period", "Apply at the next period"
    NONE = "none", "No proration"


class AuthEpochQuerySet(models.QuerySet):
    """For models that API authentication remembers per process (tokens, organizations): an
    ``update()`` bumps the authentication epoch, as a save or delete does through signals
    (``accounts.token_cache``)."""

    def update(self, **kwargs) -> int:
        rows = super().update(**kwargs)
        token_cache.epoch_bump()
        return rows

    def update_keeping_epoch(self, **kwargs) -> int:
        return super().update(**kwargs)


def default_dunning_schedule() -> list[int]:
    return [2, 5, 7, 7]


class Organization(BaseModel):
    """A merchant: the tenant every other row belongs to."""

    objects = AuthEpochQuerySet.as_manager()

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    email = models.EmailField(blank=True)
    default_currency = models.CharField(max_length=3, default="usd", validators=[currency_validator])
    invoice_prefix = models.CharField(
        max_length=12,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9]{3,12}$", "3 to 12 capital letters or digits.")],
    )
    invoice_next_number = models.PositiveBigIntegerField(default=1, editable=False)
    platform_fee_bps = models.PositiveIntegerField(
        default=400, validators=[MaxValueValidator(10_000)], help_text="Basis points of each payment."
    )
    platform_fee_fixed = models.PositiveBigIntegerField(
        default=40, help_text="Fixed fee per payment, in minor units of the payment's currency."
    )
    payout_hold_days = models.PositiveSmallIntegerField(default=7, validators=[MaxValueValidator(90)])
    dunning_schedule = ArrayField(
        models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(60)]),
        default=default_dunning_schedule,
        size=10,
        help_text="Days between payment retries after a failed renewal.",
    )
    benefit_grace_days = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(60)], help_text="Days before benefits are revoked."
    )
    proration_default = models.CharField(
        max_length=20, choices=ProrationBehavior.choices, default=ProrationBehavior.PRORATE
    )
    dunning_final_action = models.CharField(
        max_length=20,
        choices=[("cancel", "Cancel the subscription"), ("unpaid", "Mark the subscription unpaid")],
        default="cancel",
        help_text="What happens when the last payment retry fails.",
    )
    tax_behavior = models.CharField(
        max_length=20,
        choices=[("exclusive", "Prices exclude tax"), ("inclusive", "Prices include tax")],
        default="exclusive",
    )
    dispute_fee = models.PositiveBigIntegerField(
        default=1500,
        help_text="Charged to the merchant's balance when a dispute's funds are withdrawn, in minor "
        "units of the disputed currency.",
    )
    dispute_revokes_access = models.BooleanField(
        default=True,
        help_text="On a new dispute, revoke the order's benefits and end its subscription at once.",
    )
    dispute_won_restores_access = models.BooleanField(
        default=False,
        help_text="When a dispute that ended a subscription is won, restore that subscription (and the "
        "order's benefits) if its paid period is still running.",
    )
    payment_processor = models.CharField(
        max_length=20,
        choices=[("stripe", "Stripe"), ("manual", "Manual (recorded by an operator)")],
        default="stripe",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(BaseModel):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        DEVELOPER = "developer"
        VIEWER = "viewer"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"


class NameSearchKey(Func):
    """A name with each space made a word character (``'0'``), so that its trigrams run across
    words. The trigram index keeps only trigrams inside words, so a full name such as "Jean
    Ritchie" could only intersect the long posting lists of "JEA", "EAN", "RIT"... (every Jean
    and every Ritchie); "N0R" and "AN0" are rare. The same character-for-character mapping of
    the searched text (``name_search_key``) keeps a substring a substring, so nothing that
    matches is lost; what the key matches beyond (a real "0") is dropped by the exact match
    that goes with it (``accounts.selectors``). The space and the '0' are literals in the SQL,
    as in the index's expression, so that the planner recognises it."""

    template = "TRANSLATE(%(expressions)s, ' ', '0')"
    output_field = models.TextField()


def name_search_key(text: str) -> str:
    return text.replace(" ", "0")


class Customer(BaseModel):
    """A merchant's buyer. ``external_id`` is the merchant's own id, used to upsert."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="customers")
    external_id = models.CharField(max_length=255, null=True, blank=True)
    email = models.EmailField()
    name = models.CharField(max_length=255, blank=True)
    billing_address = models.JSONField(null=True, blank=True)
    tax_id = models.CharField(max_length=64, blank=True)
    tax_id_type = models.CharField(max_length=20, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    default_payment_method_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=Q(external_id__isnull=False),
                name="customer_external_id_unique_per_org",
            )
        ]
        indexes = [
            models.Index(Lower("email"), "organization", name="customer_email_idx"),
            models.Index(fields=["organization", "-created_at"], name="customer_org_created_idx"),
            # Text search: Django's icontains compiles to UPPER(col) LIKE UPPER('%term%'), which
            # a trigram index on the same UPPER expression serves (accounts.selectors). No
            # fastupdate: its pending list (up to 4 MB of unsorted entries, flushed only by vacuum
            # or when full) is read in full by every search, so searches slowed threefold while
            # customers were being created; an insert writes its trigrams straight in instead.
            GinIndex(
                OpClass(Upper("email"), name="gin_trgm_ops"), name="customer_email_trgm_idx", fastupdate=False
            ),
            # Names by their search key (NameSearchKey): trigrams that span the space between
            # words, which make a full name selective.
            GinIndex(
                OpClass(Upper(NameSearchKey("name")), name="gin_trgm_ops"),
                name="customer_name_key_trgm_idx",
                fastupdate=False,
            ),
            GinIndex(
                OpClass(Upper("external_id"), name="gin_trgm_ops"),
                name="customer_external_trgm_idx",
                fastupdate=False,
            ),
        ]

    def __str__(self) -> str:
        return self.email


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessToken(BaseModel):
    """An organization's API credential. Only a hash of the secret is kept."""

    objects = AuthEpochQuerySet.as_manager()

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, help_text="The start of the secret, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = ArrayField(models.CharField(max_length=64), default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [("revoke_accesstoken", "Can revoke access tokens")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def audit_actor(self) -> Actor:
        """How the audit log names an action taken with this token."""
        return Actor(AuditEntry.ActorKind.TOKEN, str(self))

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > clock.now()

    def has_scope(self, resource: str, write: bool) -> bool:
        wanted = f"{resource}:{'write' if write else 'read'}"
        return wanted in self.scopes or (not write and f"{resource}:write" in self.scopes)
