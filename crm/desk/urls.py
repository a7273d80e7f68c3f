from django.urls import path

from . import views

app_name = "desk"

urlpatterns = [
    path("", views.sale, name="sale"),
    path("login/", views.DeskLoginView.as_view(), name="login"),
    path("logout/", views.DeskLogoutView.as_view(), name="logout"),
    path("store/", views.store_choose, name="store_choose"),
    path("customers/lookup/", views.customer_lookup, name="customer_lookup"),
    path("products/search/", views.product_search, name="product_search"),
    path("receipts/", views.receipt_list, name="receipt_list"),
    path("receipts/<int:pk>/", views.receipt_detail, name="receipt_detail"),
    path("receipts/<int:pk>/print/", views.receipt_print, name="receipt_print"),
    path("receipts/<int:pk>/void/", views.receipt_void, name="receipt_void"),
    path("receipts/<int:pk>/email/", views.receipt_email_resend, name="receipt_email"),
    path(
        "receipts/<int:pk>/email/status/",
        views.receipt_email_status,
        name="receipt_email_status",
    ),
]
