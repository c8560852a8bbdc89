from django.db import migrations

TIERS = ["observer", "contributor", "validator", "steward"]


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in TIERS:
        Group.objects.get_or_create(name=name)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=TIERS).delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_groups, remove_groups)]
