"""WSGI entry point (gunicorn glabella.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glabella.settings")
application = get_wsgi_application()
