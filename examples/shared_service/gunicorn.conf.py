"""gunicorn settings of the order service: each worker opens the store right after the fork
(``--preload`` or not) and closes it when it exits, so its mailer hands over at once."""

bind = "127.0.0.1:8000"
workers = 4


def post_fork(server, worker):
    import eventpak as ep
    import orders

    try:
        orders.open_store()
    except ep.EventpakError:
        # An exception here would stop gunicorn altogether ("worker failed to boot"): the
        # first request opens the store instead.
        server.log.exception("opening the store after the fork failed")


def worker_exit(server, worker):
    import orders

    orders.close_store()
