from django.apps import AppConfig


class LibraryConfig(AppConfig):
    name = "empathy_web.library"
    label = "library"
    verbose_name = "Pattern library"
