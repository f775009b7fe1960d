from django.apps import AppConfig


class ChartingConfig(AppConfig):
    name = "glabella.charting"
    label = "charting"
    verbose_name = "Charting"
