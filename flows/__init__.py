"""Prefect flows: they wrap pipeline functions in tasks and orchestrate them, nothing more."""
