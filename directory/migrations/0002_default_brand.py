from django.db import migrations


def create_default_brand(apps, schema_editor):
    Brand = apps.get_model("directory", "Brand")
    if not Brand.objects.filter(default=True).exists():
        Brand.objects.create(domain="default", name="Default brand", default=True)


class Migration(migrations.Migration):
    dependencies = [("directory", "0001_initial")]

    operations = [migrations.RunPython(create_default_brand, migrations.RunPython.noop)]
