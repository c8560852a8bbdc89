import logging

from django.apps import AppConfig


class WizardsConfig(AppConfig):
    name = "empathy_web.wizards"
    label = "wizards"
    verbose_name = "Wizards"


class UnusedBanditFormats(logging.Filter):
    """A logging filter for bandit's note, at each start of a process, that it cannot
    load its SARIF output format: bandit loads every format it has, the security wizard
    uses none of them, and SARIF needs a package that is not installed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            str(record.msg).startswith("Could not load")
            and isinstance(record.args, tuple)
            and record.args[:1] == ("sarif",)
        )
