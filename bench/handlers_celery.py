"""The Celery app of bench/handlers.sh: one task, the benchmark's handle().

Broker: Redis database 0 of BENCH_REDIS (redis://127.0.0.1:PORT); results:
database 1, so that its key count is the number of tasks finished.  JSON
serialization, Celery's defaults otherwise (prefetch multiplier 4, acks
early, results kept a day).

    celery -A handlers_celery worker -P prefork -c 2   (run from bench/)
"""

import os

from celery import Celery

import handlers_task

_url = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")

app = Celery("handlers_celery", broker=_url + "/0", backend=_url + "/1")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.sum")
def sum_task(payload):
    return handlers_task.handle(payload)
