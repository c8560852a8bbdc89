from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "empathy_web.api"
    label = "agent_api"
    verbose_name = "Agent API"
