from django.apps import AppConfig


class WizardsConfig(AppConfig):
    name = "empathy_web.wizards"
    label = "wizards"
    verbose_name = "Wizards"
