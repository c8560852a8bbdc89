from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from empathy_web.api.core import PREFIX as API_PREFIX
from empathy_web.api.urls import api as agent_api
from empathy_web.library import api
from empathy_web.library.views import library, library_pattern

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("library/", library, name="library"),
    path("library/<str:pattern_id>/", library_pattern, name="library_pattern"),
    path(API_PREFIX.lstrip("/"), agent_api.urls),
    path("api/library/", api.library_list, name="api_library"),
    path("api/library/<str:pattern_id>/", api.library_detail, name="api_library_detail"),
    path("wizards/", include("empathy_web.wizards.urls")),
    path("", include("empathy_web.triage.urls")),
    path("", include("empathy_web.dashboard.urls")),
]

# Under the agent API's prefix, errors no endpoint answers are its JSON errors too.
handler400 = "empathy_web.api.core.bad_request"
handler404 = "empathy_web.api.core.not_found"
handler500 = "empathy_web.api.core.server_error"
