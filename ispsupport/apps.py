"""The infrastructure package as an app: operator commands and process-wide signal handlers."""

from django.apps import AppConfig


class IspsupportConfig(AppConfig):
    name = "ispsupport"
    verbose_name = "ispsupport"

    def ready(self) -> None:
        from celery.signals import task_failure
        from django.core.signals import got_request_exception

        from ispsupport import dbpool

        got_request_exception.connect(dbpool.on_request_exception, dispatch_uid="dbpool-request")
        task_failure.connect(dbpool.on_task_failure, dispatch_uid="dbpool-task", weak=False)
