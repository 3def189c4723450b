"""From a handler name (``module.function``) to the function, as awslambdaric resolves ``_HANDLER``.

The module part may be dotted (``pkg.mod.handler``) or a path (``dir/mod.handler``, imported as ``dir.mod``).
Failures are ``FaultError``s with awslambdaric's error types and messages; an exception raised by the module
itself while it is imported propagates unchanged.
"""

import importlib
import sys
from collections.abc import Callable
from typing import Any

from .function_errors import (
    BUILT_IN_MODULE_CONFLICT,
    HANDLER_NOT_FOUND,
    IMPORT_MODULE_ERROR,
    MALFORMED_HANDLER_NAME,
    USER_CODE_SYNTAX_ERROR,
    FaultError,
)

Handler = Callable[[Any, Any], Any]


def parse_handler_name(name: str) -> tuple[str, str]:
    """``(module name as given, function name)``; raises ``Runtime.MalformedHandlerName``."""
    module, dot, function = name.rpartition(".")
    if not dot:
        # awslambdaric reports the ValueError of its failed `module, function = name.rsplit(".", 1)`.
        raise FaultError(
            MALFORMED_HANDLER_NAME, f"Bad handler '{name}': not enough values to unpack (expected 2, got 1)"
        )
    if not module:
        raise FaultError(MALFORMED_HANDLER_NAME, f"Bad handler '{name}': empty module name")
    return module, function


def import_name(module: str) -> str:
    """The importable (dotted) name of the module part of a handler name."""
    return module.replace("/", ".")


def prepend_sys_path(task_root: str) -> None:
    """Make the function's directory the first place imports look in."""
    if not sys.path or sys.path[0] != task_root:
        sys.path.insert(0, task_root)


def load_handler(name: str) -> Handler:
    """Import the handler's module and return the handler."""
    module_name, function_name = parse_handler_name(name)
    dotted = import_name(module_name)
    if dotted.split(".")[0] in sys.builtin_module_names:
        raise FaultError(BUILT_IN_MODULE_CONFLICT, f"Cannot use built-in module {module_name} as a handler module")
    try:
        module = importlib.import_module(dotted)
    except ImportError as exc:
        raise FaultError(IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise FaultError(USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {exc}", trace) from None
    try:
        handler: Handler = getattr(module, function_name)
    except AttributeError:
        raise FaultError(HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'") from None
    return handler
