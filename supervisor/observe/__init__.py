"""What pyrie reports: the function's log on stdout, Lambda's platform lines, log tails, and telemetry."""
