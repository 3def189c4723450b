"""A SnapStart function for the tests: hooks registered with snapshot_restore_py, as a user's would be.

Every hook and handler call is printed (``SNAPSTART <what> pid=<pid>``) and kept in ``CALLS``, which the handler
returns, so a test sees which ran, in which process, and in which order. ``SNAPSTART_SCENARIO`` breaks a hook:
``fail_before`` (the before-snapshot hook raises), ``fail_after`` (the after-restore hook raises),
``fail_after_once`` (it raises unless the file ``SNAPSTART_MARKER`` exists, which it then creates);
``SNAPSTART_AFTER_RESTORE_S`` makes the after-restore hook take that long.
"""

import os
import time

from snapshot_restore_py import register_after_restore, register_before_snapshot

SCENARIO = os.environ.get("SNAPSTART_SCENARIO", "ok")
CALLS = []


def _call(what):
    CALLS.append(what)
    print(f"SNAPSTART {what} pid={os.getpid()}", flush=True)


@register_before_snapshot
def before_snapshot():
    _call("before_snapshot")
    if SCENARIO == "fail_before":
        raise RuntimeError("the connection pool cannot be closed")


@register_after_restore
def after_restore():
    _call("after_restore")
    time.sleep(float(os.environ.get("SNAPSTART_AFTER_RESTORE_S", "0")))
    if SCENARIO == "fail_after":
        raise ConnectionError("the database cannot be reached")
    if SCENARIO == "fail_after_once" and not os.path.exists(os.environ["SNAPSTART_MARKER"]):
        open(os.environ["SNAPSTART_MARKER"], "w").close()
        raise ConnectionError("the database cannot be reached")


def handler(event, context):
    _call("handler")
    return {"calls": CALLS, "pid": os.getpid()}


def credentials(event, context):
    """What botocore finds, with nothing but the runtime's environment to go on."""
    import boto3

    found = boto3.Session().get_credentials()
    frozen = found.get_frozen_credentials()
    return {
        "method": found.method,
        "access_key": frozen.access_key,
        "secret_key": frozen.secret_key,
        "token": frozen.token,
        "key_variables": sorted(
            name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if name in os.environ
        ),
        "uri": os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "authorization": os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        "initialization_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
    }
