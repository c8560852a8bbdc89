from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from empathy_web.library.views import library

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("library/", library, name="library"),
    path("", include("empathy_web.dashboard.urls")),
]
