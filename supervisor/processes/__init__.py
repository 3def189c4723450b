"""Child processes: starting them in groups of their own, relaying their output, and making sure none outlives pyrie."""
