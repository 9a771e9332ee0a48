"""GRPCInferenceService: a gRPC shim over the data plane, as REST /v2's routes are an HTTP one (MLServer's
grpc/servicers.py). Each call checks the model, converts with convert.py, calls the data plane through
app/api/v2/models.py (the code REST /v2 runs) and converts back. Errors are raised as ServiceErrors;
the interceptor renders them as status codes (errors.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping

from app.api.grpc import convert
from app.api.grpc.interceptors import Context, log_fields
from app.api.grpc.proto import open_inference_grpc_pb2 as pb
from app.api.grpc.proto import open_inference_grpc_pb2_grpc as pb_grpc
from app.api.offload import INLINE_BYTES, INLINE_ROWS, maybe_off_loop
from app.api.v2 import codec, models
from app.api.v2.types import MODEL_NAMES, PLATFORM
from app.config import Settings
from app.dataplane import DataPlane
from app.errors import BadRequest, NotReady, RequestTimeout
from app.model.keras_file import ModelLoadError

SERVER_NAME = "mnist-service"
EXTENSIONS = ["binary_tensor_data", "model_repository"]


async def parsed(
    request: pb.ModelInferRequest, inputs: Collection[str], datatypes: Mapping[str, str]
) -> codec.Inference:
    """convert.to_inference: in the thread pool for a big message (typed contents are copied value by
    value), as REST /v2 decodes big bodies; on the loop otherwise."""
    return await maybe_off_loop(request.ByteSize() > INLINE_BYTES, convert.to_inference, request, inputs, datatypes)


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The Open Inference Protocol's calls, and Triton's and KServe's repository calls, on one data plane."""

    def __init__(self, dataplane: DataPlane, settings: Settings, server_version: str) -> None:
        self.dataplane = dataplane
        self.settings = settings
        self.server_version = server_version

    def serving(self) -> DataPlane:
        """The data plane, if it takes requests; NotReady (UNAVAILABLE) once it is closing."""
        if not self.dataplane.ready:
            raise NotReady()
        return self.dataplane

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.dataplane.ready)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        models.check_name(request.name)
        if not self.dataplane.ready:
            return pb.ModelReadyResponse(ready=False)
        models.check_model(self.dataplane, request.name, request.version)
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=self.server_version, extensions=EXTENSIONS)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        dataplane = self.serving()
        models.check_model(dataplane, request.name, request.version)
        served = dataplane.model()
        inputs, outputs = models.tensors(request.name, served)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=request.name,
            versions=[served.version],
            platform=PLATFORM,
            inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in inputs],
            outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in outputs],
            properties={"loaded_at": served.loaded_at.isoformat()},
        )

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        dataplane = self.serving()
        models.check_model(dataplane, request.model_name, request.model_version)
        inputs, datatypes = models.wire_form(request.model_name)
        inference = await parsed(request, inputs, datatypes)
        try:
            # the client's deadline: no waiting for an answer nobody will read
            async with asyncio.timeout(context.time_remaining()):
                answer = await models.infer(dataplane, request.model_name, inference, self.settings.max_batch_files)
        except TimeoutError:
            raise RequestTimeout("The client's deadline passed before the answer was ready.") from None
        log_fields(answer.log_fields)
        return await maybe_off_loop(
            answer.log_fields["rows"] > INLINE_ROWS,
            convert.to_response,
            request.model_name, answer.version, inference.id, answer.results, inference.outputs, datatypes,
        )  # fmt: skip

    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest, context: Context) -> pb.RepositoryIndexResponse:
        entries = self.serving().repository_index()
        if request.ready:
            entries = [entry for entry in entries if entry.state == "READY"]
        index = pb.RepositoryIndexResponse.ModelIndex
        return pb.RepositoryIndexResponse(
            models=[
                index(name=name, version=e.version, state=e.state, reason=e.reason)
                for name in MODEL_NAMES
                for e in entries
            ]
        )

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> pb.RepositoryModelLoadResponse:
        # Triton's model_name is field 2; KServe's is field 1, which Triton's message names repository_name
        model_name = request.model_name or request.repository_name
        models.check_name(model_name)
        try:
            await self.serving().reload("request")
        except ModelLoadError as exc:
            raise BadRequest(f"The model was not loaded: {exc}") from None
        return pb.RepositoryModelLoadResponse(model_name=model_name, isLoaded=True)
