"""The processes' environment, set before numpy loads (importing this loads nothing).

One BLAS thread per process: inference is small matrix products on small batches, fastest on one
thread, and the other cores serve the engines and the other workers. `python -m app` sets it for the
server's processes; the engines get it with the allocator's settings in their environment.
"""

from __future__ import annotations

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# glibc's allocator fixed: buffers over 1 MiB (a big decode's) are mapped and go back to the system when
# freed, while up to 64 MiB of freed heap is kept for the next batch instead of being trimmed after each
# (with glibc's defaults the mmap threshold rises after the first big free, the heap then only grows,
# and trimming at every free costs the canvas path dearly).
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(64 * 1024 * 1024)}
CHILD_ENV = {**ONE_THREAD, **ALLOCATOR_ENV}
SPIN_ENV = "MNIST_ENGINE_SPIN_MS"  # in the child: its polling for the next batch (app/engines/worker.py)
