"""pyrie's supervisor: the root process that owns the listeners, the front end and the execution environments.

The name is shared with Supervisord's package; ``PYRIE_SUPERVISOR`` marks this one as pyrie's, so ``pyrie`` can refuse
to start, with one clear line, where another package's ``supervisor/__init__.py`` has replaced it.
"""

PYRIE_SUPERVISOR = True
