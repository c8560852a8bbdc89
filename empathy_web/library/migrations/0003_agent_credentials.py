"""API tokens become agent credentials: each keeps its secret (the same hash), and
becomes an observer of every team, as the read-only library API made it."""

import re

from django.db import migrations, models

import empathy_web.library.models

_NOT_IN_IDS = re.compile(r"[\x00-\x1f\x7f{}/]")


def tokens_to_agent_ids(apps, schema_editor):
    """A token's name becomes its agent id: characters an id may not hold become "-"."""
    Credential = apps.get_model("library", "AgentCredential")
    for credential in Credential.objects.all():
        agent_id = _NOT_IN_IDS.sub("-", credential.agent_id).strip() or f"agent-{credential.pk}"
        if agent_id != credential.agent_id:
            credential.agent_id = agent_id
            credential.save(update_fields=["agent_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0002_promoted_pattern_fields_agent_token"),
    ]

    operations = [
        migrations.RenameModel("AgentToken", "AgentCredential"),
        migrations.AlterModelOptions(
            name="agentcredential",
            options={"ordering": ["-created"], "verbose_name": "agent credential"},
        ),
        migrations.RenameField("agentcredential", "name", "agent_id"),
        migrations.RenameField("agentcredential", "token_hash", "secret_hash"),
        migrations.AddField(
            model_name="agentcredential",
            name="tier",
            field=models.CharField(
                choices=[
                    ("OBSERVER", "observer"),
                    ("CONTRIBUTOR", "contributor"),
                    ("VALIDATOR", "validator"),
                    ("STEWARD", "steward"),
                ],
                default="OBSERVER",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="agentcredential",
            name="all_teams",
            field=models.BooleanField(default=True, help_text="it may act in every team"),
        ),
        migrations.AlterField(
            model_name="agentcredential",
            name="all_teams",
            field=models.BooleanField(default=False, help_text="it may act in every team"),
        ),
        migrations.AddField(
            model_name="agentcredential",
            name="teams",
            field=models.JSONField(blank=True, default=list, help_text="the teams it may act in"),
        ),
        migrations.AddField(
            model_name="agentcredential",
            name="expires_at",
            field=models.DateTimeField(blank=True, help_text="none: never", null=True),
        ),
        migrations.AddField(
            model_name="agentcredential",
            name="last_used_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(tokens_to_agent_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="agentcredential",
            name="agent_id",
            field=models.CharField(
                db_index=True,
                help_text="the agent it acts as",
                max_length=200,
                validators=[empathy_web.library.models._check_agent_id],
            ),
        ),
    ]
