from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "empathy_web.api"
    label = "agent_api"
    verbose_name = "Agent API"

    def ready(self) -> None:
        from empathy_web.library.credentials import credentials_revoked

        from .admission import suspend_revoked

        credentials_revoked.connect(suspend_revoked, dispatch_uid="agent_api.suspend")
