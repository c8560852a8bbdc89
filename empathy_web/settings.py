"""Django settings for Empathy Web.

Everything that differs between a laptop and a deployment comes from the environment,
through the small typed helpers below. With nothing set, this is a production
configuration that refuses to start without a SECRET_KEY; ``DJANGO_DEBUG=true`` (what
``make demo`` and the tests use) makes it a development one.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff

from memory.page import MAX_PAGE
from memory.redis_memory import sentinel_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def envint(name: str, default: str) -> int:
    value = os.getenv(name, default).strip()
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEBUG = envbool("DJANGO_DEBUG", "false")

SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable, "
            "or set DJANGO_DEBUG=true for local development."
        )
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

# Where the agents' short-term memory lives. Unset: localhost, else the in-process mock;
# "" forces the mock; a URL that does not answer is an error (see memory.get_redis_memory).
REDIS_URL = os.getenv("REDIS_URL")
# Or the master that Redis Sentinel names (REDIS_SENTINELS=host:port,..., and
# REDIS_SENTINEL_MASTER), with REDIS_USERNAME and REDIS_PASSWORD.
REDIS_SENTINELS = sentinel_settings()
# Whether the memory is a Redis that every process shares (else each has its own mock).
SHARED_REDIS = bool(REDIS_URL or REDIS_SENTINELS)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "servestatic",
    "django_htmx",
    "template_partials",
    "axes",
    "empathy_web.accounts",
    "empathy_web.library",
    "empathy_web.dashboard",
    "empathy_web.triage",
    "empathy_web.wizards",
    "empathy_web.api",
    "ninja",
]

MIDDLEWARE = [
    "empathy_web.dashboard.prometheus.request_timings",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "empathy_web.accounts.middleware.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "empathy_web.dashboard.middleware.MemoryUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "empathy_web.urls"

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
                "empathy_web.accounts.context.tier",
            ],
        },
    },
]

ASGI_APPLICATION = "empathy_web.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", "0"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = envint("DB_TIMEOUT", "20")

# PostgreSQL connections come from a pool in each process (psycopg's, which Django runs).
# Under ASGI, each request does its database work in a thread of its own, so without a
# pool every request connects anew, and a persistent connection (DB_CONN_MAX_AGE) stays
# with a thread that the next request does not get. DB_POOL_SIZE is the most
# connections one process holds (0: no pool, e.g. behind a pooler such as PgBouncer); a
# request waits up to DB_POOL_TIMEOUT seconds for one to be free.
DB_POOL_SIZE = envint("DB_POOL_SIZE", "10")
if DB_POOL_SIZE < 0:
    raise ImproperlyConfigured(f"DB_POOL_SIZE must be 0 (no pool) or more, got {DB_POOL_SIZE}")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL_SIZE:
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured(
            "DB_CONN_MAX_AGE keeps a connection per thread, which the PostgreSQL pool "
            "replaces: unset it, or set DB_POOL_SIZE=0 to do without the pool"
        )
    DB_POOL_TIMEOUT = envint("DB_POOL_TIMEOUT", "10")
    if DB_POOL_TIMEOUT < 1:
        raise ImproperlyConfigured(f"DB_POOL_TIMEOUT must be 1 s or more, got {DB_POOL_TIMEOUT}")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DB_POOL_SIZE), "max_size": DB_POOL_SIZE, "timeout": DB_POOL_TIMEOUT,
    }  # fmt: skip

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failed logins are counted per username and address pair; after AXES_FAILURE_LIMIT
# failures that pair is locked out for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = envint("AXES_COOLOFF_MINUTES", "15") / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = envbool("AXES_ENABLED", "true")
# Behind a proxy every login comes from the proxy's address, so one attacker would lock
# a user out for everyone: name the header the proxy sets (HTTP_X_FORWARDED_FOR) and the
# address it appended there is used. Off by default: without such a proxy, the header
# is whatever the client wrote.
TRUSTED_PROXY_HEADER = os.getenv("TRUSTED_PROXY_HEADER", "")
AXES_CLIENT_IP_CALLABLE = "empathy_web.accounts.client_ip.client_ip"

# Content-Security-Policy: scripts and styles only from this site's files (no inline
# code, no eval: htmx is configured in base.html to need neither), no plugins, no
# <base>, no framing; connect-src 'self' covers the dashboard's websocket.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# Open dashboards (websockets) one user may have across every web process; more are refused.
DASHBOARD_SOCKETS_PER_USER = envint("DASHBOARD_SOCKETS_PER_USER", "20")

# /metrics (empathy_web/dashboard/prometheus.py): a bearer token, or client addresses
# and networks (CIDR) that may scrape without one; with neither, /metrics is off. At
# most METRICS_MAX_TEAMS teams, the most recently active, get series of their own.
METRICS_TOKEN = os.getenv("METRICS_TOKEN", "")
METRICS_ALLOWED_ADDRESSES = envlist("METRICS_ALLOWED_ADDRESSES", "")
METRICS_MAX_TEAMS = envint("METRICS_MAX_TEAMS", "200")
if not 1 <= METRICS_MAX_TEAMS <= MAX_PAGE:  # the teams are read as one page
    raise ImproperlyConfigured(f"METRICS_MAX_TEAMS must be from 1 to {MAX_PAGE}")
# A queue whose oldest task has waited longer than this shows in colour.
QUEUE_LATENCY_WARN_SECONDS = envint("QUEUE_LATENCY_WARN_SECONDS", "300")

# Requests one agent credential may make per minute on the agent API.
API_REQUESTS_PER_MINUTE = envint("API_REQUESTS_PER_MINUTE", "6000")
# Threads per web process that run the agent API's requests (long polls use none).
API_THREADS = envint("API_THREADS", "8")

# The security wizard: analyses one person may start per minute (cached results are free),
# and the seconds one analysis may take before it stops and says so.
WIZARD_RUNS_PER_MINUTE = envint("WIZARD_RUNS_PER_MINUTE", "10")
WIZARD_MAX_SECONDS = envint("WIZARD_MAX_SECONDS", "5")

# Sessions end after SESSION_IDLE_MINUTES without a request, and SESSION_MAX_HOURS after
# the login whatever happens (empathy_web.accounts.middleware).
SESSION_COOKIE_AGE = envint("SESSION_IDLE_MINUTES", "60") * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_MAX_SECONDS = envint("SESSION_MAX_HOURS", "12") * 3600

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# In development static files come straight from STATICFILES_DIRS and the apps; a
# deployment serves what `collectstatic` gathered here.
STATIC_ROOT = os.getenv("STATIC_ROOT") or (None if DEBUG else BASE_DIR / "static-collected")
SERVESTATIC_USE_STATIC_ROOT = STATIC_ROOT is not None

# One Redis serves the agents and, when set, the channel layer; otherwise the layer is
# in-process (the embedded demo).
# The channel layer may use a Redis user of its own (manage.py redis_acl), so that no
# memory user can put messages before the dashboards.
CHANNEL_LAYER_REDIS_URL = os.getenv("CHANNEL_LAYER_REDIS_URL") or REDIS_URL
if SHARED_REDIS:
    # Under Sentinel the layer follows the same master; its own user, if any, comes from
    # CHANNEL_LAYER_REDIS_USERNAME and CHANNEL_LAYER_REDIS_PASSWORD.
    _layer_redis = (
        {"address": CHANNEL_LAYER_REDIS_URL}
        if not REDIS_SENTINELS
        else {
            "master_name": REDIS_SENTINELS.master,
            "sentinels": REDIS_SENTINELS.sentinels,
            "sentinel_kwargs": {"socket_timeout": 5, "socket_connect_timeout": 5},
            "username": os.getenv("CHANNEL_LAYER_REDIS_USERNAME") or os.getenv("REDIS_USERNAME"),
            "password": os.getenv("CHANNEL_LAYER_REDIS_PASSWORD") or os.getenv("REDIS_PASSWORD"),
        }
    )
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "empathy_web.dashboard.layers.ResilientRedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        **_layer_redis,
                        # After a Redis restart, pooled connections fail once: retry
                        # them. The timeout outlasts the layer's 5 s blocking pops.
                        "retry": AsyncRetry(ExponentialWithJitterBackoff(base=0.05, cap=2), 5),
                        "health_check_interval": 10,
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        # Every websocket joins a group through this pool: room for many
                        # connecting at once (the default 100 raised under load).
                        "max_connections": envint("CHANNEL_LAYER_MAX_CONNECTIONS", "1000"),
                    }
                ],
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The one-process demo runs the event bridge inside the web server; deployments run
# `manage.py run_bridge` on its own.
EMBEDDED_BRIDGE = envbool("EMBEDDED_BRIDGE", "false")

# Security: strict by default, relaxed only by DEBUG or an explicit variable (for example
# SECURE_SSL_REDIRECT=false behind a proxy that already redirects).
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false" if DEBUG else "true")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("SECURE_PROXY_SSL", "false") else None
)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "true")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "false" if DEBUG else "true")
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", "false" if DEBUG else "true")
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", "false" if DEBUG else "true")
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# The root logger is configured here, so that no library configures it on import: the
# MCP SDK otherwise installs a rich-text handler at INFO on the root logger
# (``logging.basicConfig``), which then rendered a line for every MCP request (a sixth of
# a tool call's time in the server).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "filters": {"unused_bandit_formats": {"()": "empathy_web.wizards.apps.UnusedBanditFormats"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "memory": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "empathy_web": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "stevedore.extension": {"filters": ["unused_bandit_formats"]},
    },
}
