from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "glabella.accounts"
    label = "accounts"
    verbose_name = "Organizations and people"

    def ready(self) -> None:
        from glabella.accounts import signals  # noqa: F401  (login audit)
