"""SAM / CloudFormation templates: which functions a template has and how to start each one without Docker.

``read_template`` reads the file and returns a ``Template`` of frozen ``TemplateFunction`` values (names, code
directory, runtime command, environment, settings); the command line turns them into pyrie's per-function
configuration. See docs/template.md.
"""

from supervisor.template.model import (
    DurableSettings,
    FunctionUrl,
    ManagedInstances,
    Template,
    TemplateError,
    TemplateFunction,
)
from supervisor.template.reader import read_template
from supervisor.template.runtimes import NODE_RIC_ENV

__all__ = [
    "NODE_RIC_ENV",
    "DurableSettings",
    "FunctionUrl",
    "ManagedInstances",
    "Template",
    "TemplateError",
    "TemplateFunction",
    "read_template",
]
