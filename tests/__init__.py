"""The test suite. Its processes evaluate on one BLAS thread, as the served ones do (app/__main__.py, app/engine.py):
OpenBLAS splits a product's work by thread, which changes the order of its sums, so a thread engine in the
test process would otherwise answer in the last bits differently from the engine processes it is compared
with. Set here, before anything loads numpy (this package is imported before its conftest)."""

import os

from app.__main__ import ONE_THREAD

for _name, _value in ONE_THREAD.items():
    os.environ.setdefault(_name, _value)
