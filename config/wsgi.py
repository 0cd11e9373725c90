import os

from django.core.wsgi import get_wsgi_application

from config.proxy import behind_nginx

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = behind_nginx(get_wsgi_application())
