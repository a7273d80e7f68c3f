from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("o/<str:token>.gif", views.open_pixel, name="open"),
    path("l/<str:token>/", views.click, name="click"),
]
