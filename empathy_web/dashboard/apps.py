from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "empathy_web.dashboard"
    label = "dashboard"
