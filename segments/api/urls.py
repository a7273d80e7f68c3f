from rest_framework.routers import SimpleRouter

from .views import SegmentViewSet

app_name = "segments-api"

router = SimpleRouter()
router.register("segments", SegmentViewSet, basename="segment")

urlpatterns = router.urls
