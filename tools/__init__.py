"""Developer tools that run beside the services (not part of any service)."""
