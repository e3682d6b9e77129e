"""The Kubernetes manifests (deploy/k8s) and docs/scaling.md agree with the code.

The manifests are read and held against the app itself: setting names against `Settings`,
probe paths against the routes (asked of the app), ports and arguments against the CLI and
the image, the shutdown grace against the server's, and the pools at the autoscaler's maximum
against PostgreSQL's default connection limit. No cluster is needed. docs/scaling.md, which
walks through the stages up to Kubernetes, names only real settings and files.
"""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from tests.deploy.support import (
    K8S,
    ROOT,
    SECRET,
    SETTING_NAMES,
    cli_params,
    dockerfile_port,
    dockerfile_stages,
    graceful_shutdown_seconds,
    k8s_objects,
    k8s_resources,
    load_yaml,
    only_container,
    pod_spec,
    settings_from,
)

# --- Kubernetes -----------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(k8s_resources()) == on_disk
    kinds = set(k8s_objects())
    assert kinds == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "PersistentVolumeClaim",
    }
    assert all("namespace" not in obj["metadata"] for obj in k8s_objects().values())


def test_k8s_setting_names_are_settings() -> None:
    objects = k8s_objects()
    names = set(objects["ConfigMap"]["data"]) | set(objects["Secret"]["stringData"])
    for kind in ("Deployment", "Job"):
        names |= {entry["name"] for entry in only_container(kind).get("env", [])}
    assert names - SETTING_NAMES == set()


def test_k8s_settings_are_valid_once_the_placeholders_are_replaced() -> None:
    objects = k8s_objects()
    secret = objects["Secret"]["stringData"]
    with pytest.raises(ValidationError):
        settings_from({"ENVIRONMENT": "production", "SECRET_KEY": secret["SECRET_KEY"]})
    real = {key: value.replace("REPLACE-ME", "pw") for key, value in secret.items()}
    settings = settings_from({**objects["ConfigMap"]["data"], **real, "SECRET_KEY": SECRET})
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+asyncpg://")


def test_k8s_pods_read_the_config_and_secret() -> None:
    objects = k8s_objects()
    expected = {
        ("configMapRef", objects["ConfigMap"]["metadata"]["name"]),
        ("secretRef", objects["Secret"]["metadata"]["name"]),
    }
    for kind in ("Deployment", "Job"):
        env_from = only_container(kind)["envFrom"]
        sources = {(key, ref["name"]) for entry in env_from for key, ref in entry.items()}
        assert sources == expected, kind


def test_k8s_deployment_serves_on_the_image_port() -> None:
    deployment = k8s_objects()["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    container = only_container("Deployment")
    params = cli_params(container["args"])
    (port,) = container["ports"]
    assert params["port"] == port["containerPort"] == dockerfile_port()
    assert params["host"] == "0.0.0.0"  # noqa: S104 - inside a container, on purpose
    assert params["migrate_first"] is False, "migrations belong to the Job"
    scrape = deployment["spec"]["template"]["metadata"]["annotations"]
    assert (scrape["prometheus.io/port"], scrape["prometheus.io/path"]) == (
        str(port["containerPort"]),
        "/metrics",
    )


def test_k8s_probes_hit_real_routes(route_status: dict[str, int]) -> None:
    container = only_container("Deployment")
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    expected = {"readinessProbe": "/ready", "livenessProbe": "/health", "startupProbe": "/health"}
    for probe, path in expected.items():
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path, probe
        assert route_status[path] == 200, probe
        assert ports.get(http_get["port"], http_get["port"]) == dockerfile_port(), probe


def test_k8s_shutdown_outlasts_prestop_and_graceful_shutdown() -> None:
    container = only_container("Deployment")
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    grace = pod_spec("Deployment")["terminationGracePeriodSeconds"]
    assert grace > float(command[1]) + graceful_shutdown_seconds()


def test_k8s_pods_are_locked_down() -> None:
    uid = int(dockerfile_stages()[-1].last("USER").partition(":")[0])
    for kind in ("Deployment", "Job"):
        spec, container = pod_spec(kind), only_container(kind)
        assert spec["securityContext"]["runAsNonRoot"] is True, kind
        assert spec["securityContext"]["runAsUser"] == uid, kind
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, kind
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, kind
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], kind  # noqa: S108 - the pod's /tmp
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), (kind, bound)


def test_k8s_pods_share_the_export_files() -> None:
    """Whichever pod built an export, whichever pod the Service picks can hand it out."""
    objects = k8s_objects()
    claim = objects["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = {volume["name"]: volume for volume in pod_spec("Deployment")["volumes"]}
    mounts = only_container("Deployment")["volumeMounts"]
    shared = [
        mount["mountPath"]
        for mount in mounts
        if volumes[mount["name"]].get("persistentVolumeClaim", {}).get("claimName")
        == claim["metadata"]["name"]
    ]
    real = {k: v.replace("REPLACE-ME", "pw") for k, v in objects["Secret"]["stringData"].items()}
    settings = settings_from({**objects["ConfigMap"]["data"], **real, "SECRET_KEY": SECRET})
    assert any(settings.export_dir.startswith(f"{path}/") for path in shared)
    assert settings.mail_url.startswith("smtp://")


def test_k8s_service_reaches_the_pods() -> None:
    objects = k8s_objects()
    service, container = objects["Service"], only_container("Deployment")
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    ports = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
    assert port["port"] == 80
    assert ports.get(port["targetPort"], port["targetPort"]) == dockerfile_port()


def test_k8s_connections_at_the_autoscalers_maximum_fit_postgresqls_default() -> None:
    objects = k8s_objects()
    config = objects["ConfigMap"]["data"]
    deployment = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--workers" not in deployment["args"]  # one server process per pod
    pods = objects["HorizontalPodAutoscaler"]["spec"]["maxReplicas"]
    primary = pods * (int(config["DB_POOL_SIZE"]) + int(config["DB_MAX_OVERFLOW"]))
    replica = pods * int(config["DB_REPLICA_POOL_SIZE"])
    # PostgreSQL's default max_connections is 100, 3 of them reserved for superusers; keep
    # some for migrations, the replica probes and an operator.
    assert max(primary, replica) <= 80, (primary, replica)


def test_k8s_autoscaling_and_disruption_budget() -> None:
    objects = k8s_objects()
    hpa, pdb, deployment = (
        objects["HorizontalPodAutoscaler"],
        objects["PodDisruptionBudget"],
        objects["Deployment"],
    )
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    budget = pdb["spec"]
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 2
    # Some disruption is always allowed, or node drains would block forever.
    assert budget.get("minAvailable", 0) < hpa["spec"]["minReplicas"]


def test_k8s_migration_job_runs_the_same_image() -> None:
    job = only_container("Job")
    assert job["image"] == only_container("Deployment")["image"]
    assert cli_params(job["args"]) == {"revision": "head"}
    assert pod_spec("Job")["restartPolicy"] in {"Never", "OnFailure"}
    images = load_yaml(K8S / "kustomization.yaml")["images"]
    assert {image["name"] for image in images} == {job["image"].partition(":")[0]}


# --- docs/scaling.md ------------------------------------------------------------------------


def test_scaling_doc_names_real_settings_and_files() -> None:
    doc = ROOT / "docs" / "scaling.md"
    text = doc.read_text()
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})(?:=[^`]*)?`", text))
    assert named - SETTING_NAMES <= {"PROMETHEUS_MULTIPROC_DIR"}, named - SETTING_NAMES
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (doc.parent / target).resolve().exists(), target
