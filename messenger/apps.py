from django.apps import AppConfig


class MessengerConfig(AppConfig):
    name = "messenger"
    verbose_name = "Messenger core: sessions, at-rest keys, web client"

    def ready(self) -> None:
        from messenger import checks  # noqa: F401  (registers the deployment checks)
