import os
from pathlib import Path

from celery import Celery

import config.celery_transport  # noqa: F401  (filesystem:// URLs get its mended transport)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("callrouting")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def make_broker_folders() -> None:
    """The filesystem broker and beat's schedule file need folders they do not create.

    Every process imports this, web processes too: where the folder cannot be made (a read-only
    deploy, a Redis broker) the process starts anyway, and only beat or the filesystem broker,
    which need it, fail, naming the path.
    """
    folders = [Path(app.conf.beat_schedule_filename).parent]
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if key in options:
            folders.append(Path(options[key]))
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue


make_broker_folders()
