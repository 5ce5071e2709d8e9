"""gunicorn settings shared by every way the web app is served (``-c config/gunicorn_conf.py``:
production, ``make run``, the API benchmark)."""

import gc


def post_worker_init(worker) -> None:
    # Everything the app loaded (Django, the URLconf, models, serializers) lives as long as
    # the worker. Frozen, the collector never walks it again: a full collection then visits
    # only what requests left behind, a few ms instead of 150-200 ms of the worker's time
    # every 500-1,000 customer lists, a stall that lands on whichever request is in flight.
    gc.collect()
    gc.freeze()
