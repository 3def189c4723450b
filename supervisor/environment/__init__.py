"""One execution environment: its lifecycle, the invokes it runs, its extensions, and what the runtime's API needs."""
