from django.conf import settings
from django.contrib import admin
from django.urls import path

from calls.views import VendorPingView

urlpatterns = [
    path("functions/v1/vendors-ping", VendorPingView.as_view(), name="vendors-ping"),
    path(settings.ADMIN_URL, admin.site.urls),
]
