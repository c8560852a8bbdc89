from django.urls import path

from . import views

app_name = "wizards"

urlpatterns = [
    path("security/", views.security, name="security"),
    path("security/runs/<str:run_id>/", views.security_run, name="security_run"),
]
