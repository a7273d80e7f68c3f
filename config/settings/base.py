"""Settings read from the environment; defaults give the embedded mode.

With nothing configured Loyalist runs on SQLite and runs Celery tasks in-process
right after commit. Setting DATABASE_URL and REDIS_URL switches to PostgreSQL with
real Celery workers and beat.
"""

import importlib.util
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "django-insecure-loyalist-development-key-do-not-use-in-production"  # noqa: S105

SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.LoyalistAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI's assets come from this package: the API docs work offline.
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "axes",
    "crm",
    "segments",
    "campaigns",
    "personas",
]
# The benchmark harness (`manage.py bench`) is in the source checkout only; the
# Python package does not ship it.
if importlib.util.find_spec("benchmarks") is not None:
    INSTALLED_APPS.append("benchmarks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into a page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Refuses sign-ins for a user name and address after too many failures.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Five failed sign-ins for one user name from one address lock that pair for 15
# minutes, at the desk and in the admin alike. Counted in Redis when there is one
# (shared by every web process), otherwise in the database.
AXES_HANDLER = (
    "axes.handlers.cache.AxesCacheHandler"
    if env.str("REDIS_URL", default="")
    else "axes.handlers.database.AxesDatabaseHandler"
)
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:///db.sqlite3")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serialises writers; a busy timeout and immediate transactions keep the
    # web process and in-process tasks from failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    )
else:
    # The segment engine sends large generated queries; PostgreSQL's JIT spends
    # longer compiling them than running them (docs/benchmarks.md).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    # Parameters travel apart from the SQL, and a statement run more than
    # DATABASE_PREPARE_THRESHOLD times on a connection is prepared: PostgreSQL then
    # skips parsing and planning it, which roughly halves its CPU time per sale
    # (docs/benchmarks.md). Set DATABASE_PREPARE_THRESHOLD= (empty) behind a pooler in
    # transaction mode that cannot keep prepared statements (PgBouncer before 1.21).
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
    _prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip()
    if _prepare_threshold and not _prepare_threshold.isdigit():
        raise ImproperlyConfigured(
            "DATABASE_PREPARE_THRESHOLD must be a whole number of runs (5), or "
            f"empty to prepare no statements; got {_prepare_threshold!r}."
        )
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
        int(_prepare_threshold) if _prepare_threshold else None
    )
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS}.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Amsterdam")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

LOGIN_URL = "admin:login"

# Cache and Celery: Redis when configured, otherwise in-process.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="loyalist"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker busy with a task takes no further message from Redis: otherwise one
# dispatched the moment it finishes a task is held by it while another worker idles,
# and the ranges of a whole-base pass run one after the other.
CELERY_WORKER_DISABLE_PREFETCH = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE = {
    "segments-due": {"task": "segments.tasks.segments_due_task", "schedule": 30.0},
    "segments-drain-sweep": {
        "task": "segments.tasks.segments_drain_sweep_task",
        "schedule": 10.0,
    },
    "segments-birthdays": {
        "task": "segments.tasks.segments_birthdays_task",
        "schedule": crontab(hour=0, minute=5),
    },
    "segments-nightly": {
        "task": "segments.tasks.segments_nightly_task",
        "schedule": crontab(hour=3, minute=15),
    },
    "idempotency-purge": {
        "task": "crm.tasks.idempotency_purge_task",
        "schedule": crontab(hour=4, minute=30),
    },
    # Campaign runs, triggered entries and lost sends; long schedules live in the
    # database (Campaign.next_run_at), never in Celery ETAs.
    "campaigns-tick": {"task": "campaigns.tasks.campaigns_tick_task", "schedule": 60.0},
    # Webhook retries are due rows; a delivery's first attempt is enqueued on commit.
    "webhooks-due": {
        "task": "crm.webhooks.tasks.webhook_deliveries_due_task",
        "schedule": 30.0,
    },
}
CELERY_IMPORTS = ["crm.webhooks.tasks"]

# Email: console output unless EMAIL_URL says otherwise (smtp://user:pass@host:port).
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="Loyalist <receipts@loyalist.local>"
)

# Campaigns (campaigns/). Links in messages (unsubscribe, tracking) point here.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# One backend class per channel (campaigns.channels); the development backends
# write what they would send under CAMPAIGN_OUTBOX_DIR.
CAMPAIGN_CHANNEL_BACKENDS = {
    "email": "campaigns.channels.email.EmailBackend",
    "sms": "campaigns.channels.sms.FileSmsBackend",
    "push": "campaigns.channels.push.FilePushBackend",
    "social_ads": "campaigns.channels.social.AudienceBackend",
    "post": "campaigns.channels.post.MailingListBackend",
}
CAMPAIGN_OUTBOX_DIR = Path(
    env.str("CAMPAIGN_OUTBOX_DIR", default=str(BASE_DIR / "var" / "outbox"))
)
# The line every marketing SMS ends with (the backend adds it unless the text
# already says it); answering it must withdraw the customer's SMS consent.
CAMPAIGN_SMS_OPT_OUT = env.str("CAMPAIGN_SMS_OPT_OUT", default="Reply STOP to opt out")
# Social audiences hash phone numbers as E.164 digits without the "+" (Meta's
# customer lists); Google's Customer Match hashes them with it.
CAMPAIGN_AUDIENCE_PHONE_PLUS = env.bool("CAMPAIGN_AUDIENCE_PHONE_PLUS", default=False)
# How long the download link in a campaign.audience_ready event works.
CAMPAIGN_AUDIENCE_LINK_DAYS = env.int("CAMPAIGN_AUDIENCE_LINK_DAYS", default=7)
# At most this many marketing messages per customer in the window, all channels
# together (a campaign may set its own); receipts are transactional and not counted.
CAMPAIGN_FREQUENCY_CAP = env.int("CAMPAIGN_FREQUENCY_CAP", default=3)
CAMPAIGN_FREQUENCY_WINDOW_DAYS = env.int("CAMPAIGN_FREQUENCY_WINDOW_DAYS", default=7)
# Quiet hours in the customer's local time: messages due then wait until the end.
CAMPAIGN_QUIET_HOURS = env.tuple("CAMPAIGN_QUIET_HOURS", default=("21:00", "08:00"))
# Messages per second per channel, across all workers.
CAMPAIGN_RATE_LIMITS = {
    "email": env.int("CAMPAIGN_RATE_EMAIL", default=200),
    "sms": env.int("CAMPAIGN_RATE_SMS", default=50),
    "push": env.int("CAMPAIGN_RATE_PUSH", default=200),
    "social_ads": env.int("CAMPAIGN_RATE_SOCIAL_ADS", default=1000),
    "post": env.int("CAMPAIGN_RATE_POST", default=1000),
}
CAMPAIGN_BATCH_SIZE = env.int("CAMPAIGN_BATCH_SIZE", default=200)
# A worker owns the deliveries it claimed this long; past it their outcome is
# unknown and they are not resent automatically.
CAMPAIGN_LEASE_SECONDS = env.int("CAMPAIGN_LEASE_SECONDS", default=300)
CAMPAIGN_MAX_ATTEMPTS = env.int("CAMPAIGN_MAX_ATTEMPTS", default=3)
# How far back each trigger consume reads segment entries again, for entries that
# commit late: longer than the longest segment task (segments.tasks, 1900 s) and
# shorter than a day (the least re-entry window).
CAMPAIGN_TRIGGER_OVERLAP_MINUTES = env.int(
    "CAMPAIGN_TRIGGER_OVERLAP_MINUTES", default=60
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crm.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Deny by default: a signed-in user needs an API role (crm.api.permissions).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "crm.api.permissions.RolePermission",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.ApiCursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["crm.api.throttling.ScopedWindowThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["crm.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "crm.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalist API",
    "DESCRIPTION": (
        "Retail CRM: customers, receipts, contacts, segments and personas. "
        "Authenticate with `Authorization: Token <key>`. Errors always read "
        '`{"errors": [{"field": ..., "code": ..., "message": ...}]}`. '
        "See docs/api.md for walkthroughs."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ContactChannelEnum": "crm.models.Contact.ContactChannel",
        "SalesChannelEnum": "crm.models.SalesChannel",
        "ConsentChannelEnum": "crm.models.Channel",
        "ReceiptStatusEnum": "crm.models.Receipt.Status",
        "LoyaltyCardStatusEnum": "crm.models.LoyaltyCard.Status",
        "ConsentStatusEnum": "crm.models.Consent.Status",
        "CustomerSourceEnum": "crm.models.Customer.Source",
        "ConsentSourceEnum": "crm.models.Consent.Source",
        "ContactKindEnum": "crm.models.Contact.Kind",
        "ContactInputKindEnum": "crm.api.serializers.CONTACT_INPUT_KINDS",
        "LoyaltyTransactionKindEnum": "crm.models.LoyaltyTransaction.Kind",
        "BulkItemStatusEnum": "crm.api.serializers.BULK_ITEM_STATUSES",
        "WebhookEventEnum": "crm.webhooks.models.WebhookEvent",
        "WebhookDeliveryStatusEnum": "crm.webhooks.models.WebhookDelivery.Status",
        "SegmentKindEnum": "segments.models.Segment.Kind",
        "SegmentEventKindEnum": "segments.models.SegmentEvent.Kind",
        "SegmentEventCauseEnum": "segments.models.SegmentEvent.Cause",
        "PersonaStatusEnum": "personas.models.Persona.Status",
        "PersonaLevelEnum": "personas.models.Persona.Level",
        "PersonaContactChannelEnum": "personas.forms.CONTACT_CHANNELS",
        "CampaignKindEnum": "campaigns.models.Campaign.Kind",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "DeliveryStatusEnum": "campaigns.models.Delivery.Status",
    },
}

# Requests per window and client (token user) by view scope; empty disables one.
LOYALIST_API_THROTTLE_RATES = {
    "default": env.str("LOYALIST_API_THROTTLE_RATE", default="20000/min"),
    "preview": env.str("LOYALIST_API_PREVIEW_THROTTLE_RATE", default="60/min"),
    "recompute": env.str("LOYALIST_API_RECOMPUTE_THROTTLE_RATE", default="6/min"),
}

PHONENUMBER_DEFAULT_REGION = env.str("PHONENUMBER_DEFAULT_REGION", default="NL")
PHONENUMBER_DB_FORMAT = "E164"

# Webhook URLs on private, loopback or link-local addresses are refused (the server
# would otherwise POST to hosts only it can reach); allow them for a receiver on
# this machine in development.
LOYALIST_WEBHOOK_ALLOW_PRIVATE = env.bool(
    "LOYALIST_WEBHOOK_ALLOW_PRIVATE", default=False
)
# How long an Idempotency-Key is remembered; clients retry within minutes.
LOYALIST_IDEMPOTENCY_KEEP_DAYS = env.int("LOYALIST_IDEMPOTENCY_KEEP_DAYS", default=7)

# Loyalty programme: prices, points and the points' value are in this currency.
LOYALIST_CURRENCY = env.str("LOYALIST_CURRENCY", default="EUR")
LOYALIST_POINTS_PER_CURRENCY_UNIT = env.int(
    "LOYALIST_POINTS_PER_CURRENCY_UNIT", default=1
)
# What one point is worth when redeemed, in the currency.
LOYALIST_POINT_VALUE = env.str("LOYALIST_POINT_VALUE", default="0.01")

# How long the admin's home dashboard keeps its figures before computing them again.
LOYALIST_DASHBOARD_CACHE_SECONDS = env.int(
    "LOYALIST_DASHBOARD_CACHE_SECONDS", default=300
)

# Segments smaller than this are flagged in the admin: too narrow to pay for a campaign.
LOYALIST_SEGMENT_MIN_SIZE = env.int("LOYALIST_SEGMENT_MIN_SIZE", default=50)

# Unit costs of the personas' return-on-investment estimate, in the currency.
LOYALIST_PERSONA_SERVICE_COST_PER_EFFORT = env.str(
    "LOYALIST_PERSONA_SERVICE_COST_PER_EFFORT", default="4.00"
)
LOYALIST_PERSONA_CAMPAIGN_COST_PER_CUSTOMER = env.str(
    "LOYALIST_PERSONA_CAMPAIGN_COST_PER_CUSTOMER", default="6.00"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
