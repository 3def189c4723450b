"""Durable functions in pyrie: the settings, the desk that routes their invokes and API calls, the pool invoker."""
