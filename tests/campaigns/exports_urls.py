"""The project's URLs with the run exports, until config/urls.py includes them."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("campaigns/", include("campaigns.urls_exports")),
]

handler403 = "config.views.permission_denied"
