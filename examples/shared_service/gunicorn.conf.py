"""gunicorn settings of the order service: each worker opens the store right after the fork
(``--preload`` or not) and closes it when it exits, so its mailer hands over at once."""

bind = "127.0.0.1:8000"
workers = 4


def post_fork(server, worker):
    import orders

    orders.open_store()


def worker_exit(server, worker):
    import orders

    orders.close_store()
