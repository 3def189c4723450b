"""The template example's Python function: a greeting built from the template's parameters and Globals.

GREETING comes from the Greeting parameter and the region (``!Sub "${Greeting} from ${AWS::Region}"``), STAGE from
the Stage parameter through ``Globals: Function: Environment``.
"""

import os
from typing import Any


def handler(event: Any, context: Any) -> dict[str, Any]:
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {
        "message": f"{os.environ.get('GREETING', 'Hello')}, {name}!",
        "stage": os.environ.get("STAGE"),
        "functionName": context.function_name,
        "memoryLimitInMB": context.memory_limit_in_mb,
    }
