"""Buffered Python handlers for the awslambdaric integration tests (the cases of the Go emulator's own suite)."""

import json
import os
import time


def success(event, context):
    print("Printing data to console")
    return "My lambda ran succesfully"


def env_value(event, context):
    return os.environ.get(event.get("name", "MyEnv"))


def environment(event, context):
    return dict(os.environ)


def arn(event, context):
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "test_function")
    return {"arn": context.invoked_function_arn, "expected": f"arn:aws:lambda:us-east-1:012345678912:function:{name}"}


def sleep(event, context):
    time.sleep(event.get("seconds", 5) if isinstance(event, dict) else 5)
    return "I was sleeping"


def exception(event, context):
    raise Exception("Raising an exception")


def remaining_time(event, context):
    return context.get_remaining_time_in_millis()


def function_name(event, context):
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


def client_context(event, context):
    cc = context.client_context
    client = cc.client if cc else None
    return {
        "client": {"installation_id": client.installation_id, "app_title": client.app_title} if client else None,
        "custom": cc.custom if cc else None,
        "env": cc.env if cc else None,
    }


def echo(event, context):
    return event


def request_id(event, context):
    return context.aws_request_id


def big(event, context):
    return "x" * event["size"]


def tenant(event, context):
    """Which process ran the invoke, for which tenant (also printed with ``say``: an Event invoke's answer is lost)."""
    event = event if isinstance(event, dict) else {}
    time.sleep(event.get("seconds", 0))
    ran = {"pid": os.getpid(), "tenant": context.tenant_id}
    if event.get("say"):
        print("RAN " + json.dumps(ran), flush=True)
    return ran
