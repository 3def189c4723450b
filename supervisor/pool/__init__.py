"""The pool of execution environments: which invoke goes where, Event invokes waiting, environments coming and going."""
