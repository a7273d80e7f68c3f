from django.db import migrations


def groups_create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ("Clerks", "Marketers"):
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(groups_create, migrations.RunPython.noop)]
