"""The infrastructure package as an app: operator commands and process-wide signal handlers.

``ispsupport`` holds no models; its ``ready()`` connects the cross-cutting receivers (pool
exhaustion log, slow-query log, pool figures for /metrics) and registers its system checks.
"""

from django.apps import AppConfig


class IspsupportConfig(AppConfig):
    name = "ispsupport"
    verbose_name = "ispsupport"

    def ready(self) -> None:
        from celery.signals import task_failure
        from django.core import checks
        from django.core.signals import got_request_exception, request_finished
        from django.db.backends.signals import connection_created

        from ispsupport import checks as infra_checks
        from ispsupport import dbpool, pools, querylog

        got_request_exception.connect(dbpool.on_request_exception, dispatch_uid="dbpool-request")
        task_failure.connect(dbpool.on_task_failure, dispatch_uid="dbpool-task", weak=False)
        connection_created.connect(querylog.install, dispatch_uid="ispsupport.slow_query_log")
        request_finished.connect(pools.sample_soon, dispatch_uid="ispsupport.pool_figures")
        checks.register(infra_checks.check_metrics)
