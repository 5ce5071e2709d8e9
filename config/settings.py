"""Recur settings, read from the environment.

Defaults work on a development machine of this project's kind: PostgreSQL and
Redis on localhost, Stripe pointed at a local localstripe. ``RECUR_ENV=production``
turns on the deploy hardening and refuses development secrets.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "django-insecure-recur-development-only"
DEV_STRIPE_KEY = "sk_test_recur_localstripe"

RECUR_ENV = env.str("RECUR_ENV", default="development")
if RECUR_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"RECUR_ENV must be development, test or production, not {RECUR_ENV!r}")
PRODUCTION = RECUR_ENV == "production"

DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
# Previous keys still accepted by signatures (download links) after a rotation.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# One variable per thing moves a second development instance (README, "A second instance"):
# the web port drives the public URL, the localstripe port the Stripe API base, the database
# name the database URL and the Redis database number the cache and the Celery broker.
WEB_PORT = env.int("WEB_PORT", default=8000)
STRIPE_PORT = env.int("STRIPE_PORT", default=8420)
DB_NAME = env.str("DB_NAME", default="recur")
REDIS_DB = env.int("REDIS_DB", default=0)

INSTALLED_APPS = [
    "config.apps.BackofficeAdminConfig",  # replaces django.contrib.admin
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # index expressions with operator classes (trigram search)
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "djstripe",
    "core",
    "core.events",
    "accounts",
    "billing.payments",
    "billing.catalog",
    "billing.checkout",
    "billing.orders",
    "billing.subscriptions",
    "billing.ledger",
    "billing.refunds",
    "billing.disputes",
    "billing.webhooks",
    "benefits",
    "benefits.license_keys",
    "benefits.github",
    "benefits.downloadables",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ConcurrentUpdateMiddleware",
]

# WhiteNoise serves static files under gunicorn, in development (`make run`) as in production.
MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
if not PRODUCTION:  # straight from the app folders, no collectstatic needed
    WHITENOISE_USE_FINDERS = True
    # Edited files show at once with DEBUG on (`make run`); the benchmark, with DEBUG off,
    # then serves static files as production does.
    WHITENOISE_AUTOREFRESH = DEBUG

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"postgres://postgres@localhost:5432/{DB_NAME}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, with a health check that sends no query (core/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "core.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default=f"redis://localhost:6379/{REDIS_DB}")
CACHES = {
    "default": {
        "BACKEND": "core.cache.RedisCache",
        "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="recur"),
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploaded files (benefits.downloadables) go through Django's default storage: the local disk
# under MEDIA_ROOT unless DJANGO_STORAGE_BACKEND names another (S3-compatible storage with
# django-storages: docs/operations.md). MEDIA_ROOT is never served as such: files leave only
# through signed download links.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".run" / "media")
STORAGES = {
    "default": {
        "BACKEND": env.str("DJANGO_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env.json("DJANGO_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Uploads: the first handler counts and hashes each file as it arrives and stops reading a
# request once a file passes RECUR_FILE_MAX_BYTES; the next two keep the bytes (memory, then a
# temporary file past FILE_UPLOAD_MAX_MEMORY_SIZE).
RECUR_FILE_MAX_BYTES = env.int("RECUR_FILE_MAX_BYTES", default=100 * 1024 * 1024)
FILE_UPLOAD_HANDLERS = [
    "benefits.downloadables.uploads.CheckedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# How long a customer's signed download link works.
RECUR_DOWNLOAD_LINK_TTL_SECONDS = env.int("RECUR_DOWNLOAD_LINK_TTL_SECONDS", default=3600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.AccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.HasTokenScope"],
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.AccessTokenRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.CreatedCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["core.api.filters.OrganizationFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # `?format=` is not a switch here (JSON only): it is an unknown parameter like any other, a 400.
    "URL_FORMAT_OVERRIDE": None,
    "PAGE_SIZE": 20,
}
# Requests per minute allowed to one access token.
RECUR_API_RATE_LIMIT = env.int("RECUR_API_RATE_LIMIT", default=1200)
# Failed secret guesses (unknown access tokens, checkout client secrets) per client address and minute.
RECUR_TOKEN_GUESS_LIMIT = env.int("RECUR_TOKEN_GUESS_LIMIT", default=20)
RECUR_IDEMPOTENCY_TTL_HOURS = 24
# The public license key endpoints (validate, activate, deactivate): requests per client
# address and per key (Polar allows 3 a second).
RECUR_LICENSE_KEY_RATE = env.str("RECUR_LICENSE_KEY_RATE", default="3/s")
# Unknown license keys per client address and minute before the address gets 429s.
RECUR_LICENSE_KEY_GUESS_LIMIT = env.int("RECUR_LICENSE_KEY_GUESS_LIMIT", default=30)
# Where customers reach this deployment (hosted checkout links).
RECUR_PUBLIC_URL = env.str("RECUR_PUBLIC_URL", default=f"http://localhost:{WEB_PORT}")

# GitHub repository access benefits (benefits/github): the REST API's base URL (GitHub Enterprise
# Server: https://HOST/api/v3) and a token with admin rights on the repositories sold. Without a
# token the benefit type is "not configured" and cannot be created.
RECUR_GITHUB_API_URL = env.str("RECUR_GITHUB_API_URL", default="https://api.github.com")
RECUR_GITHUB_TOKEN = env.str("RECUR_GITHUB_TOKEN", default="")
RECUR_GITHUB_TIMEOUT_SECONDS = env.float("RECUR_GITHUB_TIMEOUT_SECONDS", default=10)

SPECTACULAR_SETTINGS = {
    "OAS_VERSION": "3.1.0",
    "TITLE": "Recur API",
    "DESCRIPTION": (
        "Billing for software merchants: customers, catalog, checkout, subscriptions, "
        "orders, refunds, ledger and payouts. Authenticate with an organization access "
        "token: `Authorization: Bearer <token>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_error_responses",
        "core.events.schema.add_event_webhooks",
    ],
    "PREPROCESSING_HOOKS": ["core.api.schema.strip_trailing_slashes"],
    "ENUM_NAME_OVERRIDES": {
        "CheckoutStatusEnum": "billing.checkout.models.Checkout.Status",
        "OrderStatusEnum": "billing.orders.models.Order.Status",
        "SubscriptionStatusEnum": "billing.subscriptions.models.Subscription.Status",
        "PriceTypeEnum": "billing.catalog.models.Price.Type",
        "DiscountTypeEnum": "billing.catalog.models.Discount.Type",
        "ProrationBehaviorEnum": "accounts.models.ProrationBehavior",
        "RefundReasonEnum": "billing.refunds.models.Refund.Reason",
        "RefundStatusEnum": "billing.refunds.models.Refund.Status",
        "DisputeStatusEnum": "billing.disputes.models.Dispute.Status",
        "BenefitGrantStatusEnum": "benefits.models.BenefitGrant.Status",
        "LicenseKeyStatusEnum": "benefits.license_keys.models.LicenseKey.Status",
        "WebhookDeliveryStatusEnum": "billing.webhooks.models.WebhookDelivery.Status",
    },
}

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Write last_run_at after every sent task so the dashboard's beat tick is real.
CELERY_BEAT_SYNC_EVERY = 1
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The queue tasks are sent to and workers consume; a benchmark gives its workers their own.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# --- Stripe / dj-stripe -------------------------------------------------------
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
STRIPE_TEST_SECRET_KEY = env.str("STRIPE_TEST_SECRET_KEY", default=DEV_STRIPE_KEY)
STRIPE_LIVE_SECRET_KEY = env.str("STRIPE_LIVE_SECRET_KEY", default="")
STRIPE_TEST_PUBLIC_KEY = env.str("STRIPE_TEST_PUBLIC_KEY", default="pk_test_recur_localstripe")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
STRIPE_WEBHOOK_TOLERANCE = 300
# The platform's endpoint: /stripe/webhook/<uuid>/, signed with this secret. In production
# both come from the endpoint you create in Stripe; these defaults serve localstripe.
STRIPE_WEBHOOK_UUID = env.str("STRIPE_WEBHOOK_UUID", default="7b0c1e5a-3d2f-4c8e-9a61-52ec0de0f00d")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="whsec_recur_development_only")
# Failed event processing is retried with backoff this many times before it needs an operator.
RECUR_EVENT_MAX_ATTEMPTS = env.int("RECUR_EVENT_MAX_ATTEMPTS", default=8)
# A Stripe payment still pending, requiring action or processing this many minutes after it
# was created is asked about at the processor (billing.payments.settlement), webhooks or not.
RECUR_PAYMENT_SETTLE_AFTER_MINUTES = env.int("RECUR_PAYMENT_SETTLE_AFTER_MINUTES", default=5)
# Outgoing webhooks (billing/webhooks): per-request timeout, requests in flight per sender,
# at most this many requests in flight to one endpoint, how long a claimed delivery stays
# leased before a sweep may send it again, and whether http and private addresses are allowed
# (development only: production requires https URLs resolving to public addresses).
RECUR_WEBHOOK_TIMEOUT_SECONDS = env.float("RECUR_WEBHOOK_TIMEOUT_SECONDS", default=10)
RECUR_WEBHOOK_SENDER_CONCURRENCY = env.int("RECUR_WEBHOOK_SENDER_CONCURRENCY", default=128)
RECUR_WEBHOOK_ENDPOINT_CONCURRENCY = env.int("RECUR_WEBHOOK_ENDPOINT_CONCURRENCY", default=16)
RECUR_WEBHOOK_CLAIM_LEASE_SECONDS = env.int("RECUR_WEBHOOK_CLAIM_LEASE_SECONDS", default=120)
RECUR_WEBHOOK_SENDER_BUDGET_SECONDS = env.float("RECUR_WEBHOOK_SENDER_BUDGET_SECONDS", default=30)
RECUR_WEBHOOK_ALLOW_PRIVATE = env.bool("RECUR_WEBHOOK_ALLOW_PRIVATE", default=not PRODUCTION)
# A queue of their own for the webhook sender (run `celery worker -Q <queue>` beside the others).
RECUR_WEBHOOK_QUEUE = env.str("RECUR_WEBHOOK_QUEUE", default="")
if RECUR_WEBHOOK_QUEUE:
    CELERY_TASK_ROUTES = {
        name: {"queue": RECUR_WEBHOOK_QUEUE} for name in ("webhooks.send", "webhooks.sweep")
    }
if not PRODUCTION:
    # localstripe: a local fake Stripe server; nothing here ever calls the internet.
    STRIPE_API_HOST = env.str("STRIPE_API_HOST", default=f"http://localhost:{STRIPE_PORT}")

# --- Production hardening -----------------------------------------------------
if PRODUCTION:
    problems = []
    if DEBUG:
        problems.append("DJANGO_DEBUG must be off")
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        problems.append("DJANGO_SECRET_KEY must be set to a long random value")
    if not ALLOWED_HOSTS:
        problems.append("DJANGO_ALLOWED_HOSTS must list the served host names")
    if STRIPE_TEST_SECRET_KEY == DEV_STRIPE_KEY and not STRIPE_LIVE_SECRET_KEY:
        problems.append("a real Stripe secret key must be set")
    if STRIPE_WEBHOOK_SECRET == "whsec_recur_development_only":
        problems.append("STRIPE_WEBHOOK_SECRET must be the secret of your Stripe webhook endpoint")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
