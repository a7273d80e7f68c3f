from django.urls import re_path
from rest_framework.routers import SimpleRouter

from .customers import CustomerExplainView
from .views import SegmentViewSet

app_name = "segments-api"

router = SimpleRouter()
router.register("segments", SegmentViewSet, basename="segment")

urlpatterns = [
    *router.urls,
    # Under the customer's own URL: it is a question about the customer.
    re_path(
        r"^customers/(?P<pk>[0-9]+)/explain/$",
        CustomerExplainView.as_view(),
        name="customer-explain",
    ),
]
