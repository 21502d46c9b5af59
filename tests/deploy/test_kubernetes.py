"""deploy/k8s against the Kubernetes schemas (kubernetes-validate, strict), KEDA objects checked structurally."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from docs import catalog
from tests.deploy.manifests import K8S, K8S_EXAMPLES, PORTS, k8s_by_kind, k8s_documents, require

KUBERNETES_VERSION = "1.33.0"
# Metadata the KEDA redis-streams scaler reads (keda.sh/docs/scalers/redis-streams).
REDIS_STREAMS_METADATA = {
    "address",
    "addressFromEnv",
    "host",
    "hostFromEnv",
    "port",
    "portFromEnv",
    "username",
    "usernameFromEnv",
    "passwordFromEnv",
    "databaseIndex",
    "enableTLS",
    "unsafeSsl",
    "stream",
    "consumerGroup",
    "pendingEntriesCount",
    "streamLength",
    "lagCount",
    "activationLagCount",
}
SCALING_METRICS = {"pendingEntriesCount", "streamLength", "lagCount"}
NOT_CORE = {"ScaledObject", "TriggerAuthentication", "Kustomization"}


def _validate(document: dict[str, Any]) -> None:
    kubernetes_validate = require("kubernetes_validate")
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_examples() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", *K8S_EXAMPLES}
    assert listed == present


def test_kustomization_never_replaces_a_secret_the_user_created() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    secrets = [
        name
        for name in listed
        for document in yaml.safe_load_all((K8S / name).read_text())
        if document and document["kind"] == "Secret"
    ]
    assert secrets == [], "kubectl apply -k would overwrite the user's Secret with these"


@pytest.mark.parametrize(
    "name,document",
    [d for d in k8s_documents() if d[1]["kind"] not in NOT_CORE],
    ids=lambda v: v if isinstance(v, str) else v["kind"],
)
def test_manifest_is_valid_kubernetes(name: str, document: dict[str, Any]) -> None:
    _validate(document)


def test_the_schema_check_can_fail() -> None:
    kubernetes_validate = require("kubernetes_validate")
    deployment = copy.deepcopy(k8s_by_kind("Deployment")["indexer"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("command", list(PORTS))
def test_workloads_probe_health_and_readiness_and_request_resources(command: str) -> None:
    deployment = k8s_by_kind("Deployment")[command]
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert port == PORTS[command]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert (
        pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    )
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations[
        "prometheus.io/port"
    ] == str(port)
    service = k8s_by_kind("Service")[command]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_ingest_runs_on_the_host_network_one_per_node() -> None:
    deployment = k8s_by_kind("Deployment")["ingest"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    term = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0, (
        "a new pod cannot bind the old one's ports"
    )
    env = {e["name"]: e for e in _container(deployment)["env"]}
    assert env["INGEST_PUBLIC_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"


def test_keda_scales_the_consumers_on_their_groups() -> None:
    scaled = k8s_by_kind("ScaledObject")
    deployments = k8s_by_kind("Deployment")
    readers = {spec.name: set(spec.read_by) for spec in catalog.all_topics()}
    redis_service = k8s_by_kind("Service")["redis"]
    redis_address = f"redis.{redis_service['metadata']['namespace']}.svc.cluster.local:{redis_service['spec']['ports'][0]['port']}"
    assert set(scaled) == {"indexer", "ingest"}
    for obj in scaled.values():
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        spec = obj["spec"]
        assert spec["scaleTargetRef"]["name"] in deployments
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["triggers"]
        group_of_target = {"indexer": "transcript_indexer", "ingest": "media_ingest"}[
            spec["scaleTargetRef"]["name"]
        ]
        for trigger in spec["triggers"]:
            assert trigger["type"] == "redis-streams"
            metadata = trigger["metadata"]
            assert all(isinstance(v, str) for v in metadata.values()), (
                "KEDA metadata values are strings"
            )
            assert set(metadata) <= REDIS_STREAMS_METADATA, set(metadata) - REDIS_STREAMS_METADATA
            assert len(SCALING_METRICS & set(metadata)) == 1, (
                "one of pendingEntriesCount, streamLength, lagCount"
            )
            assert int(next(metadata[k] for k in SCALING_METRICS if k in metadata)) > 0
            assert metadata["stream"] in readers, f"{metadata['stream']} is not a topic"
            assert metadata["consumerGroup"] == group_of_target
            assert metadata["consumerGroup"] in readers[metadata["stream"]], (
                "that group reads that topic (catalog)"
            )
            assert metadata["address"] == redis_address, (
                "KEDA resolves names from its own namespace: use the full name"
            )


def test_config_and_secret_feed_the_pods() -> None:
    config = k8s_by_kind("ConfigMap")["voicetap-config"]
    secret = k8s_by_kind("Secret")["voicetap-secrets"]
    assert config["data"]["REDIS_URL"].startswith("redis://redis.voicetap.svc.cluster.local:6379")
    for deployment in k8s_by_kind("Deployment").values():
        container = _container(deployment)
        assert {"configMapRef": {"name": "voicetap-config"}} in container["envFrom"]
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "voicetap-secrets" and ref["key"] in secret["stringData"], (
                    env["name"]
                )


def test_prometheus_scrapes_every_service(tmp_path: Path) -> None:
    root = K8S.parent
    compose_jobs = {
        job["job_name"]: job
        for job in yaml.safe_load((root / "prometheus.yml").read_text())["scrape_configs"]
    }
    for command, port in PORTS.items():
        assert compose_jobs[command]["dns_sd_configs"] == [
            {"names": [command], "type": "A", "port": port}
        ]
    k8s_job = yaml.safe_load((root / "prometheus-k8s.yml").read_text())["scrape_configs"][0]
    assert k8s_job["kubernetes_sd_configs"][0]["role"] == "pod"
    keep = k8s_job["relabel_configs"][0]
    assert keep["action"] == "keep" and keep["source_labels"] == [
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
    ]


def test_the_servers_of_call_content_take_the_token_from_the_secret() -> None:
    secret = k8s_by_kind("Secret")["voicetap-secrets"]
    assert "VOICETAP_API_TOKEN" in secret["stringData"]
    deployments = k8s_by_kind("Deployment")
    for name, deployment in deployments.items():
        env = {e["name"]: e for e in _container(deployment).get("env", [])}
        wanted = "gateway" not in name
        assert ("VOICETAP_API_TOKEN" in env) is wanted, name
        if wanted:
            ref = env["VOICETAP_API_TOKEN"]["valueFrom"]["secretKeyRef"]
            # not optional: a pod without the key fails to start, naming it
            assert ref == {"name": "voicetap-secrets", "key": "VOICETAP_API_TOKEN"}, name
