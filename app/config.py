"""Service settings, read from MNIST_* environment variables; the defaults serve the committed model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.contract import DEFAULT_MAX_PIXELS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / "mnist-mlp.keras"


class Settings(BaseSettings):
    """Every setting can be set as MNIST_<NAME> in the environment, e.g. MNIST_MAX_BODY_BYTES=1048576."""

    model_config = SettingsConfigDict(env_prefix="MNIST_", frozen=True, protected_namespaces=("settings_",))

    model_path: Path = Field(
        DEFAULT_MODEL_PATH, description="the .keras file to serve; its metadata is the .json beside it"
    )
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1, description="largest request body accepted (413 beyond)")
    max_batch_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1, description="largest body of /v1/predict/batch and /v2 inference (413 beyond)"
    )
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="largest image (width x height) decoded (413 beyond)")
    max_batch_files: int = Field(64, ge=1, description="most files in one /v1/predict/batch request")
    max_digits: int = Field(64, ge=1, description="most digits /v1/read reads in one image (422 beyond)")
    batch_max_size: int = Field(64, ge=1, description="most images the batcher evaluates in one model call")
    batch_max_wait_ms: float = Field(
        0.0, ge=0, le=100, description="how long a batch waits for requests still being received (0: never)"
    )
    engine_processes: int = Field(
        2, ge=0, le=64,
        description="child processes that preprocess and evaluate batches, off the event loop's core (0: threads)",
    )  # fmt: skip
    engine_timeout_s: float = Field(
        30.0, gt=0, description="a batch an engine process takes longer on is retried file by file in a new one"
    )
    engine_spin_ms: float = Field(
        1.0, ge=0, le=100,
        description="how long an engine process polls for its next batch before it sleeps, giving way to any other "
        "process (0: it sleeps at once)",
    )  # fmt: skip
    model_poll_s: float = Field(
        10.0, ge=0, description="how often the model files are checked for a new model to load (0: never; SIGHUP and "
        "POST /v2/repository/models/mnist-mlp/load still reload)",
    )  # fmt: skip
    gate_min_accuracy: float | None = Field(
        None, ge=0, le=1,
        description="a new model is served only if it scores at least this on the built-in gate sample (1,000 MNIST "
        "test digits); unset: 0.005 under what the serving model scores there",
    )  # fmt: skip
    digit_threshold: float | None = Field(
        None, ge=0, le=1,
        description="`is_digit` is `digit_score >= this`; unset: the threshold in the model's metadata, chosen on "
        "validation digits",
    )  # fmt: skip
    check_with_keras: bool = Field(
        False, description="also load the model with Keras at start-up and refuse to serve if it answers differently"
    )
    verify_model_sha256: bool = Field(
        True, description="refuse to start when the model file's sha256 differs from its metadata"
    )
    max_in_flight: int = Field(
        256, ge=1, description="requests served at once; more get 503 + Retry-After (probes exempt)"
    )
    body_timeout_s: float = Field(30.0, gt=0, description="an upload that sends nothing for this long gets 408")
    body_deadline_s: float = Field(120.0, gt=0, description="an upload whose body takes longer than this gets 408")
    api_keys: SecretStr = Field(SecretStr(""), description="comma-separated API keys; empty: no keys needed")
    api_keys_file: Path | None = Field(None, description="a file of API keys, one per line (e.g. a mounted secret)")
    auth_scope: Literal["inference", "all"] = Field(
        "inference", description="what keys protect: /v1 and /v2 inference only, or all but the health probes"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed by CORS ('*' for any); empty: CORS off"
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value

    grpc_port: int = Field(
        8081, ge=0, le=65535,
        description="the port of the Open Inference Protocol over gRPC, beside REST (0: no gRPC); with WEB_CONCURRENCY "
        "> 1 every worker serves it (SO_REUSEPORT)",
    )  # fmt: skip
    grpc_host: str | None = Field(
        None,
        description="the address gRPC listens on; unset: REST's (HOST, else 127.0.0.1), as `python -m app` binds it",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = Field("json", description="one JSON object per log line, or plain text")
