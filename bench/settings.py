"""Settings for the benchmark's app server: Glabella's own settings, production-like (no debug),
with the benchmark URLconf (one extra minimal view to compare against) and plain HTTP on
127.0.0.1 (the load generator talks to gunicorn directly, without a TLS proxy in front)."""

from glabella.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
