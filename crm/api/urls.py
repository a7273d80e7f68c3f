from rest_framework.routers import SimpleRouter

from . import views
from .webhooks import WebhookSubscriptionViewSet

app_name = "crm-api"

router = SimpleRouter()
router.register("stores", views.StoreViewSet, basename="store")
router.register("categories", views.CategoryViewSet, basename="category")
router.register("products", views.ProductViewSet, basename="product")
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("loyalty-cards", views.LoyaltyCardViewSet, basename="loyaltycard")
router.register("receipts", views.ReceiptViewSet, basename="receipt")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = router.urls
