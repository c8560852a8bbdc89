from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "empathy_web.dashboard"
    label = "dashboard"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
