"""Prometheus metrics: their definitions and what records them (the exposition is app/api/health.py's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from app.contract import MODEL_NAME

if TYPE_CHECKING:
    from app.engines.messages import Evaluation
    from app.model.classifier import Classifier

disable_created_metrics()  # the *_created series only add noise to every counter and histogram
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

# `protocol` is "rest" or "grpc"; a gRPC call's method is POST, its route the RPC's path
# (/inference.GRPCInferenceService/ModelInfer) and its status the gRPC status code's name (OK, NOT_FOUND, ...).
HTTP_REQUESTS = Counter(
    "mnist_http_requests_total", "HTTP requests answered", ["protocol", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "mnist_http_request_duration_seconds", "HTTP request latency", ["protocol", "method", "route"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
IN_FLIGHT = Gauge(
    "mnist_http_requests_in_flight", "HTTP requests being served", ["protocol"], multiprocess_mode="livesum"
)
INFERENCE_LATENCY = Histogram(
    "mnist_inference_duration_seconds", "Model evaluation time per call", buckets=LATENCY_BUCKETS
)
INFERENCE_BATCH = Histogram("mnist_inference_batch_size", "Images per model call", buckets=BATCH_BUCKETS)
PREDICTIONS = Counter("mnist_predictions_total", "Predictions made, by predicted digit", ["digit"])
PREDICTED = [PREDICTIONS.labels(str(digit)) for digit in range(10)]  # labels() costs more than inc()
NOT_DIGITS = Counter("mnist_not_a_digit_total", "Predictions of images that do not look like a digit (is_digit false)")
# Info metrics don't exist in multiprocess mode; a gauge fixed at 1 with the labels is the usual stand-in.
MODEL_INFO = Gauge("mnist_model_info", "The served model", ["name", "version", "sha256"], multiprocess_mode="max")


def observe_evaluation(evaluation: Evaluation) -> None:
    """Record one model call of an engine: its latency, its batch size, the digits it predicted and how
    many of its images were no digit."""
    INFERENCE_LATENCY.observe(evaluation.seconds)
    INFERENCE_BATCH.observe(evaluation.batch_size)
    for digit in evaluation.probabilities.argmax(axis=1).tolist():
        PREDICTED[digit].inc()
    is_digit = evaluation.is_digit
    if is_digit is not None and (flagged := int(len(is_digit) - np.count_nonzero(is_digit))):
        NOT_DIGITS.inc(flagged)


MODEL_RELOADS = Counter(
    "mnist_model_reloads_total", "New models found: loaded, refused by the gate, or failed to load", ["result"]
)
for _result in ("loaded", "refused", "failed"):
    MODEL_RELOADS.labels(_result)  # every series from the start, at 0


def set_model_info(classifier: Classifier, previous: Classifier | None = None) -> None:
    """`mnist_model_info` at 1 for the served model (and at 0 for the one it replaced)."""
    if previous is not None:
        MODEL_INFO.labels(previous.metadata.get("name", MODEL_NAME), previous.version, previous.sha256).set(0)
    MODEL_INFO.labels(classifier.metadata.get("name", MODEL_NAME), classifier.version, classifier.sha256).set(1)
