from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="chainhead",
            name="prev_hash",
            field=models.CharField(default="0" * 64, max_length=64),
        ),
    ]
