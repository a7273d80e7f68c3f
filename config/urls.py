from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Loyalist"
admin.site.site_title = "Loyalist"
admin.site.index_title = "Customers, segments, personas and campaigns"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("desk/", include("crm.desk.urls")),
]
