"""Deployment files, offline: every Kubernetes manifest validates against the Kubernetes schemas, and the
probes, ports, user, settings and files agree with what the app and the Dockerfile really serve.
(`make docker-smoke` proves the image itself; this needs no container engine and no model.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
KSERVE = sorted((K8S / "kserve").glob("*.yaml"))
KSERVE_GRPC = K8S / "kserve" / "grpc" / "inferenceservice.yaml"  # a variant: replaces the REST one (same name)
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# the oldest Kubernetes still in common support and the newest whose schemas kubernetes-validate ships
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def by_kind(paths: list[Path]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in map(load, paths)}


RESOURCES = by_kind(MANIFESTS)
KSERVE_RESOURCES = by_kind(KSERVE)
POD = RESOURCES["Deployment"]["spec"]["template"]["spec"]
CONTAINER = POD["containers"][0]
RUNTIME = KSERVE_RESOURCES["ServingRuntime"]
RUNTIME_CONTAINER = RUNTIME["spec"]["containers"][0]
ISVC = KSERVE_RESOURCES["InferenceService"]
ISVC_GRPC = load(KSERVE_GRPC)


def dockerfile_env() -> dict[str, str]:
    """The final stage's ENV (one ENV instruction, `KEY=value` pairs, continued with backslashes)."""
    final = DOCKERFILE.split("\nFROM ")[-1]
    match = re.search(r"^ENV ((?:.*\\\n)*.*)$", final, re.MULTILINE)
    assert match, "the final stage sets its environment with ENV"
    return dict(pair.split("=", 1) for pair in match.group(1).replace("\\\n", " ").split())


def dockerfile_instruction(name: str) -> str:
    """The final stage's instruction `name`, its continuation lines joined."""
    match = re.search(rf"^{name} ((?:.*\\\n)*.*)$", DOCKERFILE.split("\nFROM ")[-1], re.MULTILINE)
    assert match, f"the final stage has {name}"
    return re.sub(r"\\\n\s*", " ", match.group(1))


def served_paths() -> set[str]:
    """The paths the app documents (its OpenAPI schema, built without loading the model)."""
    return set(create_app().openapi()["paths"])


def probe_status(path: str) -> int:
    """What a probe's GET gets from the app as it is before the model loads (no lifespan: no model)."""
    return TestClient(create_app()).get(path).status_code


def quantity(value: str | int) -> float:
    """A Kubernetes quantity ("500m", "1", "768Mi", "1Gi") as a number; the schemas accept any string."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?", str(value))
    assert match, f"{value!r} is not a Kubernetes quantity"
    scale = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[match.group(2)]
    return float(match.group(1)) * scale


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


# the KServe v1beta1 fields these manifests may use (KServe's API reference), to catch typos offline
PREDICTOR_FIELDS = {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "containerConcurrency", "model"}
MODEL_FIELDS = {"modelFormat", "runtime", "protocolVersion", "storageUri", "ports", "env", "resources"}
IMAGE_ENV = dockerfile_env()
IMAGE_PORT = int(IMAGE_ENV["PORT"])
GRPC_PORT = Settings.model_fields["grpc_port"].default  # the app's default (tests/conftest.py sets 0 for its own)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, version, strict=True)  # offline: the schemas ship in the package


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kserve_runtime_pod_is_valid_kubernetes(version: str) -> None:
    """KServe's resources have no schema offline, but the runtime's container and volumes are core/v1 types."""
    spec = RUNTIME["spec"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runtime"},
           "spec": {"containers": spec["containers"], "volumes": spec["volumes"]}}  # fmt: skip
    kubernetes_validate.validate(pod, version, strict=True)
    for isvc in (ISVC, ISVC_GRPC):
        predictor = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"},
                     "spec": {"containers": [{"name": "kserve-container", "image": "x", "ports": isvc["spec"]["predictor"]["model"]["ports"]}]}}  # fmt: skip
        kubernetes_validate.validate(predictor, version, strict=True)


@pytest.mark.parametrize("isvc", [ISVC, ISVC_GRPC], ids=["rest", "grpc"])
def test_inferenceservice_uses_only_known_kserve_fields(isvc: dict[str, Any]) -> None:
    """The v1beta1 fields we rely on (KServe's API reference); a typo would otherwise pass silently."""
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and RUNTIME["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert set(isvc["spec"]) == {"predictor"}
    predictor = isvc["spec"]["predictor"]
    assert set(predictor) <= PREDICTOR_FIELDS and set(predictor["model"]) <= MODEL_FIELDS
    assert predictor["scaleMetric"] in {"cpu", "memory"}  # what the HPA autoscaler class accepts
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in {"RawDeployment", "Standard"}
    assert set(RUNTIME["spec"]) <= {"supportedModelFormats", "protocolVersions", "containers", "volumes", "multiModel"}


def test_probes_are_routes_the_app_serves() -> None:
    assert CONTAINER["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # readiness is Kubernetes' grpc probe: grpc.health.v1 Check of the whole server (service "", the default),
    # which app/api/grpc/server.py sets SERVING once the model is loaded and NOT_SERVING when it stops
    assert CONTAINER["readinessProbe"]["grpc"] == {"port": GRPC_PORT}
    assert CONTAINER["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert RUNTIME_CONTAINER["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert RUNTIME_CONTAINER["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    for container in (CONTAINER, RUNTIME_CONTAINER):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if "httpGet" in container.get(probe, {}):  # 200 or 503 (not ready): a route the app serves, not a 404
                assert probe_status(container[probe]["httpGet"]["path"]) in (200, 503), f"{probe} is not served"
    assert "/healthz'" in dockerfile_instruction("HEALTHCHECK") and probe_status("/healthz") == 200
    annotations = RESOURCES["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert probe_status(annotations["prometheus.io/path"]) == 200
    assert int(annotations["prometheus.io/port"]) == IMAGE_PORT


def test_readiness_answers_503_before_the_model_is_loaded() -> None:
    """What the readiness probes see while the model loads (no lifespan here: the model is not loaded)."""
    client = TestClient(create_app())
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 503


def test_ports_agree_everywhere() -> None:
    assert GRPC_PORT == 8081 and IMAGE_ENV["MNIST_GRPC_PORT"] == str(GRPC_PORT)
    assert dockerfile_instruction("EXPOSE").split() == [str(IMAGE_PORT), str(GRPC_PORT)]
    ports = {port["name"]: port["containerPort"] for port in CONTAINER["ports"]}
    assert ports == {"http": IMAGE_PORT, "grpc": GRPC_PORT} and env_of(CONTAINER)["PORT"] == str(IMAGE_PORT)
    assert env_of(CONTAINER)["MNIST_GRPC_PORT"] == str(GRPC_PORT)
    service_ports = {port["name"]: port for port in RESOURCES["Service"]["spec"]["ports"]}
    assert {name: port["targetPort"] for name, port in service_ports.items()} == {"http": "http", "grpc": "grpc"}
    assert service_ports["grpc"]["port"] == GRPC_PORT and service_ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    # the runtime states no port: each InferenceService states the one KServe routes to (REST's or gRPC's)
    assert "ports" not in RUNTIME_CONTAINER
    assert env_of(RUNTIME_CONTAINER)["PORT"] == str(IMAGE_PORT)
    assert env_of(RUNTIME_CONTAINER)["MNIST_GRPC_PORT"] == str(GRPC_PORT)
    for container in (CONTAINER, RUNTIME_CONTAINER):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if "httpGet" in container.get(probe, {}):
                assert container[probe]["httpGet"]["port"] in ("http", IMAGE_PORT)
            elif probe in container:
                assert container[probe]["grpc"]["port"] == GRPC_PORT  # a number: grpc probes take no port name
    assert [port["containerPort"] for port in ISVC["spec"]["predictor"]["model"]["ports"]] == [IMAGE_PORT]
    assert "name" not in ISVC["spec"]["predictor"]["model"]["ports"][0]  # Knative allows only http1 or h2c
    # KServe's name for a gRPC port (Knative routes HTTP/2 cleartext by it), and the only port
    assert ISVC_GRPC["spec"]["predictor"]["model"]["ports"] == [
        {"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}
    ]


def test_kserve_grpc_variant_differs_only_in_its_port() -> None:
    """grpc/inferenceservice.yaml is the REST InferenceService with gRPC's port: the same name (the model_name
    clients send), runtime, protocol and scaling. In a directory of its own, so that `kubectl apply -f
    deploy/k8s/kserve/` applies one InferenceService, not both under one name."""

    def without_ports(isvc: dict[str, Any]) -> dict[str, Any]:
        copy = json.loads(json.dumps(isvc))
        del copy["spec"]["predictor"]["model"]["ports"]
        return copy

    assert without_ports(ISVC_GRPC) == without_ports(ISVC)
    assert [load(path)["kind"] for path in KSERVE].count("InferenceService") == 1 and KSERVE_GRPC not in KSERVE


def test_grpc_listens_on_all_interfaces_in_the_image() -> None:
    """The image sets HOST=0.0.0.0 and no MNIST_GRPC_HOST, so gRPC binds where REST does (a subprocess: the
    server's stubs and tritonclient's, imported by other tests, share the protobuf package `inference`)."""
    assert not any("MNIST_GRPC_HOST" in env for env in (IMAGE_ENV, env_of(CONTAINER), env_of(RUNTIME_CONTAINER)))
    env = {key: value for key, value in os.environ.items() if not key.startswith("MNIST_")}
    image = IMAGE_ENV | env_of(CONTAINER)  # what the Deployment's container sees
    env.update(HOST=image["HOST"], MNIST_GRPC_PORT=image["MNIST_GRPC_PORT"])
    code = "from app.api.grpc.server import listen_address; from app.config import Settings; print(listen_address(Settings()))"
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    address = run.stdout.strip()
    assert address == f"0.0.0.0:{GRPC_PORT}"


def test_image_runs_as_non_root_and_serves_on_all_interfaces() -> None:
    user = dockerfile_instruction("USER")
    uid, gid = (int(part) for part in user.split(":"))  # numeric: runAsNonRoot can check it
    assert uid != 0 and gid != 0
    assert IMAGE_ENV["HOST"] == "0.0.0.0" and IMAGE_ENV["WEB_CONCURRENCY"] == "1"
    assert IMAGE_ENV["HOME"] == "/tmp"  # Keras's config dir: on the tmp volume, not the read-only root
    assert json.loads(dockerfile_instruction("CMD")) == ["python", "-m", "app"]  # exec form: SIGTERM reaches it
    pod_context = POD["securityContext"]
    assert pod_context["runAsNonRoot"] is True
    assert (pod_context["runAsUser"], pod_context["runAsGroup"]) == (uid, gid)
    runtime_context = RUNTIME_CONTAINER["securityContext"]
    assert (runtime_context["runAsUser"], runtime_context["runAsGroup"]) == (uid, gid)


@pytest.mark.parametrize("container", [CONTAINER, RUNTIME_CONTAINER], ids=["deployment", "kserve-runtime"])
def test_container_is_locked_down_with_only_tmp_writable(container: dict[str, Any]) -> None:
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    volumes = POD["volumes"] if container is CONTAINER else RUNTIME["spec"]["volumes"]
    assert [volume["name"] for volume in volumes] == ["tmp"] and "emptyDir" in volumes[0]


def test_kserve_runtime_matches_the_deployment() -> None:
    """Same image, settings and resources: the two ways to deploy differ only in who routes and scales."""
    assert RUNTIME_CONTAINER["image"] == CONTAINER["image"]
    assert env_of(RUNTIME_CONTAINER) == env_of(CONTAINER)
    assert RUNTIME_CONTAINER["resources"] == CONTAINER["resources"]
    assert RUNTIME["spec"]["volumes"] == POD["volumes"]


def test_kserve_serves_this_model_over_the_v2_protocol() -> None:
    model = ISVC["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2" and "v2" in RUNTIME["spec"]["protocolVersions"]
    assert model["runtime"] == RUNTIME["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in RUNTIME["spec"]["supportedModelFormats"]}
    assert "/v2/models/{model_name}/infer" in served_paths()
    # KServe clients call /v2/models/<InferenceService name>/...: the app knows that name (503: not loaded
    # yet here), and refuses any other (404)
    client = TestClient(create_app())
    assert client.get(f"/v2/models/{ISVC['metadata']['name']}/ready").status_code == 503
    assert client.get("/v2/models/not-this-model/ready").status_code == 404


def test_resources_are_sized_and_scaled() -> None:
    for container in (CONTAINER, RUNTIME_CONTAINER):
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        assert set(requests) == set(limits) == {"cpu", "memory"}
        assert all(quantity(requests[name]) <= quantity(limits[name]) for name in requests)
        assert int(env_of(container)["MNIST_MAX_IN_FLIGHT"]) <= 8  # the memory limit is sized for 8 in flight
    hpa = RESOURCES["HorizontalPodAutoscaler"]
    deployment = RESOURCES["Deployment"]
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["scaleTargetRef"] == target
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert RESOURCES["Service"]["spec"]["selector"] == labels
    assert RESOURCES["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    assert deployment["spec"]["template"]["metadata"]["labels"] == labels
    # the pod gets longer to stop than preStop's sleep plus uvicorn's graceful shutdown (10 s, app/__main__.py)
    sleep = int(CONTAINER["lifecycle"]["preStop"]["exec"]["command"][1])
    assert POD["terminationGracePeriodSeconds"] > sleep + 10


def test_image_holds_the_app_and_the_model_only() -> None:
    """The serving image installs the package from app/ alone: no training code, no test, no data."""
    admitted = [line[1:] for line in (ROOT / ".dockerignore").read_text().split() if line.startswith("!")]
    assert sorted(admitted) == sorted(
        [
            "pyproject.toml",
            "README.md",
            "app/",
            "models/mnist-mlp.keras",
            "models/mnist-mlp.json",
            "models/mnist-mlp.digit.keras",
            "models/mnist-mlp.reading.json",
        ]
    )
    copied = [
        line.split()[1:-1] for line in DOCKERFILE.splitlines() if line.startswith("COPY ") and "--from" not in line
    ]
    assert not any(path.startswith("training") for paths in copied for path in paths), copied
    assert "tomllib" not in DOCKERFILE, "the Dockerfile installs the package, with no filtering of its dependencies"


def test_image_installs_only_what_serving_runs() -> None:
    """The serving dependencies and the bytecode the image carries (docs/deployment.md, "Image size")."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower(): requirement for requirement in dependencies}
    # uvicorn without [standard]: its uvloop and httptools, not websockets, watchfiles or pyyaml
    assert names["uvicorn"].startswith("uvicorn>") and {"uvloop", "httptools"} <= names.keys(), names
    assert not {"websockets", "watchfiles", "pyyaml"} & names.keys(), names
    # the protobuf the dev extra's grpcio-tools (which generated the stubs) allows, so the tests run the image's
    assert "<7" in names["protobuf"], names["protobuf"]
    # bytecode compiled once at build time (the root filesystem is read-only), but not the dependencies' tests
    assert "--no-compile" in DOCKERFILE and "-m compileall -q -j 0 -x '/tests?/' /opt/venv/lib" in DOCKERFILE
    assert not re.search(r"compileall[^\n]* -o ", DOCKERFILE), "one optimisation level only"


def test_compose_serves_on_8000_read_only() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    (service,) = compose["services"].values()
    assert service["ports"] == [f"8000:{IMAGE_PORT}", f"{GRPC_PORT}:{GRPC_PORT}"]
    assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]
    assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]
    assert service["environment"]["MNIST_MAX_IN_FLIGHT"] == env_of(CONTAINER)["MNIST_MAX_IN_FLIGHT"]
