"""WSGI entry point: HTTP only (admin, console pages, API, the webhook)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")

application = get_wsgi_application()
