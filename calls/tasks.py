"""Background jobs for calls: thin, they take an id and call one service."""

from django.conf import settings

from calls.exports import call_export_run
from config.celery import app


@app.task(
    name="calls.export_xlsx",
    # A million-row workbook takes minutes, longer than the default task limit.
    time_limit=settings.EXPORT_TASK_TIME_LIMIT,
    soft_time_limit=settings.EXPORT_TASK_TIME_LIMIT - 30,
    ignore_result=True,
)
def call_export_xlsx(export_id: int) -> None:
    call_export_run(export_id=export_id)
