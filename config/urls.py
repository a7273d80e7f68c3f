from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = "Loyalist"
admin.site.site_title = "Loyalist"
admin.site.index_title = "Customers, segments, personas and campaigns"

handler403 = "config.views.permission_denied"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("desk/", include("crm.desk.urls")),
    # The unsubscribe, open and click links in campaign email: short, public.
    path("c/", include("campaigns.urls")),
    # Mailing lists and social audiences of a campaign run, for staff (and a
    # signed link for the ad platform's webhook receiver).
    path("campaigns/", include("campaigns.urls_exports")),
    path("api/v1/", include("crm.api.urls")),
    path("api/v1/", include("segments.api.urls")),
    path("api/v1/", include("personas.api.urls")),
    path("api/v1/", include("campaigns.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
]
