"""Deployment files: the Kubernetes manifests validate offline against the Kubernetes schemas, and the
probes, ports and image agree with what the app and the Dockerfile really serve."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
KSERVE = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "deploy" / "kserve").glob("*.yaml")}
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "k8s" / name).read_text())
    return document


def served_paths() -> set[str]:
    """Every documented path the app serves (its OpenAPI schema; no model needed)."""
    return set(create_app().openapi()["paths"])


def image_port() -> int:
    match = re.search(r"\bPORT=(\d+)", DOCKERFILE)
    assert match, "the Dockerfile sets PORT"
    return int(match.group(1))


@pytest.mark.parametrize("path", K8S, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, "1.30.0", strict=True)


def test_deployment_probes_and_port_match_the_app() -> None:
    container = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert port == image_port() and f"EXPOSE {port}" in DOCKERFILE
    paths = served_paths()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in paths
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_deployment_is_locked_down() -> None:
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) in DOCKERFILE  # the image's own non-root user
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"]
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]


def test_service_and_hpa_point_at_the_deployment() -> None:
    deployment, service, hpa = load("deployment.yaml"), load("service.yaml"), load("hpa.yaml")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_kserve_runs_the_same_image_with_the_v2_protocol() -> None:
    runtime, service = KSERVE["servingruntime"], KSERVE["inferenceservice"]
    container = runtime["spec"]["containers"][0]
    deployment = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert runtime["kind"] == "ServingRuntime" and service["kind"] == "InferenceService"
    assert container["image"] == deployment["image"]
    assert container["ports"][0]["containerPort"] == image_port()
    assert "v2" in runtime["spec"]["protocolVersions"]
    paths = served_paths()
    assert {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]} <= paths
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"] and model["protocolVersion"] == "v2"
    assert model["modelFormat"]["name"] == runtime["spec"]["supportedModelFormats"][0]["name"] == "mnist-mlp"
    assert "/v2/models/{model_name}/infer" in paths
