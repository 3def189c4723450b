"""The invoke front end as the supervisor sees it: the listeners it binds, the gunicorn it starts and watches, and
the pipe server that takes the front end's connections."""
