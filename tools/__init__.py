"""Tools that tests and benchmarks share: the realistic-upload generator (uploads.py)."""
