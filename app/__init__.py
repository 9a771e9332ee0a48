"""The mnist-service web app.

Inference is small matrix products on small batches: one BLAS thread per process is fastest and
leaves the other cores to other workers (measured; see README "Speed"). Set before numpy loads.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
