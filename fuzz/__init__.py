"""Fuzzing the service's decode and preprocessing entry point with atheris (`make fuzz`)."""
