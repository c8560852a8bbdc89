from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0005_lengths_from_the_library"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="team",
            field=models.CharField(
                blank=True, db_index=True, default="", help_text="empty: org-wide", max_length=200
            ),
            preserve_default=False,
        ),
    ]
