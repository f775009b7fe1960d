from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "glabella.web"
    label = "web"
    verbose_name = "Web pages"

    def ready(self) -> None:
        from glabella.web import checks  # noqa: F401  (registers the deployment checks)
        from glabella.web.middleware import connect_signals

        connect_signals()
