from django.apps import AppConfig


class TriageConfig(AppConfig):
    name = "empathy_web.triage"
    label = "triage"
    verbose_name = "Pattern triage"

    def ready(self) -> None:
        # The dashboard keeps the live panels; the queue joins them from here so that
        # the dashboard never has to import triage.
        from empathy_web.dashboard.panels import register

        from .panels import PATTERN_QUEUE

        register(PATTERN_QUEUE)
