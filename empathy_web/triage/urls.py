from django.urls import path

from . import views

urlpatterns = [
    path("patterns/", views.patterns, name="patterns"),
    path("patterns/bulk/", views.pattern_bulk, name="pattern_bulk"),
    path("patterns/<str:pattern_id>/", views.pattern_detail, name="pattern_detail"),
    path("patterns/<str:pattern_id>/<str:action>/", views.pattern_action, name="pattern_action"),
]
