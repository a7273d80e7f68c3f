from rest_framework.routers import SimpleRouter

from .views import CampaignViewSet

app_name = "campaigns-api"

router = SimpleRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")

urlpatterns = router.urls
