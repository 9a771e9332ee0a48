"""The mnist-service web app.

Inference is small matrix products on small batches: one BLAS thread per process is fastest and
leaves the other cores to other workers (measured; see README "Speed"). Set before numpy loads.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# TensorFlow only loads the model and checks it once at start-up: small thread pools, quiet C++ logs
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
