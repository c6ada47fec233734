"""deploy/: the Kubernetes manifests (validated offline against a pinned Kubernetes version's schemas, and
checked for what operating OTV needs), the compose file, the container image's Dockerfile, its runtime
requirements and the alerting rules. No cluster and no Docker engine are reachable here, so nothing is
applied or built: these are static checks."""

from __future__ import annotations

import ast
import configparser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from argon2 import PasswordHasher
from packaging.utils import canonicalize_name

from services.booking.config import Settings as BookingSettings
from services.catalog.config import Settings as CatalogSettings
from services.gateway.config import Settings as GatewaySettings
from services.gateway.proxy import parse_networks
from services.gateway.staff.commands import COMMANDS as GATEWAY_COMMANDS
from services.gateway.staff.forwarding import ACTION_SEGMENTS
from services.notifier.config import Settings as NotifierSettings
from services.reporting.commands import COMMANDS as REPORTING_COMMANDS
from services.reporting.config import Settings as ReportingSettings
from shared.config import SERVICE_NAMES, CommonSettings
from shared.migrate import settings_for
from shared.topology import CONSUMERS, INTEGRATIONS, TopologySettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# The Kubernetes version whose OpenAPI schemas the manifests must satisfy (strict: no unknown fields).
KUBERNETES_VERSION = "1.32.0"
HPA_SERVICES = ("gateway", "booking")
# Files of deploy/k8s that kustomization.yaml leaves out on purpose (its header says why).
NOT_IN_KUSTOMIZATION = {
    "secrets.example.yaml",
    "migrate/migrate-job.yaml",
    "rabbitmq/rabbitmq-cluster.yaml",
}
SETTINGS_CLASSES = (GatewaySettings, CatalogSettings, BookingSettings, NotifierSettings, ReportingSettings)


# --- loading -------------------------------------------------------------------------------------------
def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


@cache
def documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file relative to deploy/k8s, document) of every manifest."""
    found = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found.append((str(path.relative_to(K8S)), doc))
    return tuple(found)


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(kind)}


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        for doc in of_kind(kind):
            yield f"{kind}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def containers_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def deployment_of(service: str) -> dict[str, Any]:
    return by_name("Deployment")[f"otv-{service}"]


def hpas_of(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The HorizontalPodAutoscalers that scale this Deployment."""
    return [
        h
        for h in of_kind("HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        and h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@cache
def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def known_environment_variables() -> set[str]:
    """Every OTV_* variable some process reads: the settings' fields and the per-role passwords."""
    names = {f"OTV_{field.upper()}" for cls in SETTINGS_CLASSES for field in cls.model_fields}
    names |= {f"OTV_{field.upper()}" for field in CommonSettings.model_fields}
    names |= {f"OTV_{service.upper()}_DB_PASSWORD" for service in SERVICE_NAMES}
    # tools/mailsink.py and deploy/healthcheck.py read these directly.
    names |= {
        "OTV_MAILSINK_HTTP_HOST",
        "OTV_MAILSINK_HTTP_PORT",
        "OTV_MAILSINK_MAX_MESSAGES",
        "OTV_HEALTH_URL",
    }
    return names


# --- Kubernetes: schema --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_kubernetes_manifest_satisfies_the_pinned_kubernetes_schemas(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert docs, f"{path} holds no document"
    for doc in docs:
        if doc["apiVersion"].startswith("rabbitmq.com/"):
            continue  # the operator's custom resource: no schema here; checked below
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']} at {where}: {exc.message}")
        assert doc["metadata"].get("namespace", "otv") in ("otv", "otv-data"), doc["metadata"]["name"]


def test_kustomization_lists_every_manifest_but_the_ones_left_out_on_purpose() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    on_disk = {str(p.relative_to(K8S)) for p in manifest_files()}
    assert listed <= on_disk, f"listed but missing: {listed - on_disk}"
    assert on_disk - listed == NOT_IN_KUSTOMIZATION


def test_the_kustomize_build_is_valid_too() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (optional: the files themselves are validated above)")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    kinds = []
    for doc in yaml.safe_load_all(built):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        kinds.append(doc["kind"])
    assert kinds.count("Deployment") == len(SERVICE_NAMES)


# --- Kubernetes: the release's image ---------------------------------------------------------------------
RELEASE = K8S / "release"  # the kustomize component that names the image's registry and tag, once
MIGRATE = K8S / "migrate"  # the migrations Job's own kustomization (applied before the Deployments)
OPERATORS_IMAGE = "harbor.jobcenter.local/otv"


def release_image() -> tuple[str, str]:
    """(the placeholder the manifests name, the image the release component puts in its place)."""
    component = yaml.safe_load((RELEASE / "kustomization.yaml").read_text(encoding="utf-8"))
    assert component["kind"] == "Component"
    (entry,) = component["images"]
    return entry["name"], f"{entry['newName']}:{entry['newTag']}"


def release_section() -> str:
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    start = notes.index("### 4. Each release")
    return notes[start : notes.index("\n#", start)]


def code_lines(markdown: str) -> list[str]:
    """The commands of the indented code blocks, a line ending in a backslash joined with the next."""
    joined: list[str] = []
    for line in (line[4:] for line in markdown.splitlines() if line.startswith("    ")):
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + line.strip()
        else:
            joined.append(line.strip())
    return joined


def built_images(directory: Path) -> dict[str, str]:
    """`kubectl kustomize` of a directory: the image of every container, by kind/name/container."""
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    built = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    images = {}
    for doc in yaml.safe_load_all(built):
        if doc["kind"] in ("Deployment", "Job"):
            for container in containers_of(doc["spec"]["template"]["spec"]):
                images[f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"] = container["image"]
    return images


def test_every_otv_container_names_the_placeholder_that_the_release_component_replaces() -> None:
    """The operator sets the registry and the tag in one file (k8s/release/kustomization.yaml), never in
    the manifests: a manifest that names the image itself would escape the replacement."""
    placeholder, image = release_image()
    assert ":" not in placeholder and "/" not in placeholder and image.split(":")[0] != placeholder
    pods = list(pod_specs())
    assert {name for name, _ in pods} >= {"Job/otv-migrate", *(f"Deployment/otv-{s}" for s in SERVICE_NAMES)}
    for name, pod in pods:
        for container in containers_of(pod):
            assert container["image"] == placeholder, f"{name} {container['name']}: {container['image']}"
    for directory in (K8S, MIGRATE):
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
        assert "images" not in kustomization, directory
        components = [(directory / c).resolve() for c in kustomization["components"]]
        assert components == [RELEASE.resolve()], directory


def test_the_release_steps_run_the_migrations_of_the_operators_registry_and_tag(tmp_path: Path) -> None:
    """The release's Job once ran the old image after the registry had been replaced as the README said:
    its sed matched only `registry.example/otv`, so the Job migrated nothing, completed, and the new pods
    went ready on the old schema. The README's own commands, run on a copy whose release component names
    another registry and a new tag, must give that image to both containers of the Job and to every
    Deployment."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (the files are checked above)")
    section = release_section()
    # No rewriting of a manifest on its way to the cluster, and no registry of the example.
    assert "kubectl apply -f -" not in section and "registry.example" not in section
    root = tmp_path / "repo"
    shutil.copytree(K8S, root / "deploy" / "k8s")
    component_path = root / "deploy" / "k8s" / "release" / "kustomization.yaml"
    component = yaml.safe_load(component_path.read_text(encoding="utf-8"))
    component["images"][0] |= {"newName": OPERATORS_IMAGE, "newTag": "0.2.0"}
    component_path.write_text(yaml.safe_dump(component), encoding="utf-8")
    wanted = f"{OPERATORS_IMAGE}:0.2.0"

    commands = code_lines(section)
    (job_command,) = [c for c in commands if c.startswith("kubectl apply -k deploy/k8s/migrate")]
    rendered = subprocess.run(
        ["bash", "-c", job_command.replace("kubectl apply -k", "kubectl kustomize")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    (job,) = [d for d in yaml.safe_load_all(rendered) if d["kind"] == "Job"]
    assert [c["image"] for c in containers_of(job["spec"]["template"]["spec"])] == [wanted, wanted]

    deployments = built_images(root / "deploy" / "k8s")
    assert len(deployments) == len(SERVICE_NAMES) and set(deployments.values()) == {wanted}
    # The image the "consumers first" rollout sets by hand comes from the same place.
    (image_line,) = [c for c in commands if c.startswith("IMAGE=")]
    derived = subprocess.run(
        ["bash", "-c", f'{image_line}; printf %s "$IMAGE"'],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert derived == wanted
    assert "=$IMAGE" in section


def test_the_shipped_release_component_gives_the_job_and_the_deployments_one_image() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (the files are checked above)")
    _, image = release_image()
    images = built_images(MIGRATE) | built_images(K8S)
    assert len(images) == 2 + len(SERVICE_NAMES)
    assert set(images.values()) == {image}


# --- Kubernetes: what operating OTV needs ---------------------------------------------------------------
@pytest.mark.req("R51")
@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_runs_replicated_with_readiness_and_liveness_probes(service: str) -> None:
    deployment = deployment_of(service)
    hpas = hpas_of(deployment)
    # With an HPA the HPA's floor counts (the Deployment must not name a count: see the test below).
    assert (hpas[0]["spec"]["minReplicas"] if hpas else deployment["spec"]["replicas"]) >= 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", f"services.{service}"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Liveness must not restart a pod that is merely not ready (database down): more patient than readiness.
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert (
        live["periodSeconds"] * live["failureThreshold"] > ready["periodSeconds"] * ready["failureThreshold"]
    )
    port = next(p for p in container["ports"] if p["name"] == "http")["containerPort"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_has_resource_requests_and_limits(service: str) -> None:
    (container,) = deployment_of(service)["spec"]["template"]["spec"]["containers"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][part]), f"{service}: {part}"


def mebibytes(quantity: str) -> float:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", quantity)
    assert match, quantity
    return int(match[1]) * {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}[match[2]]


def test_the_gateways_memory_limit_holds_its_password_checks_and_a_create_admin_beside_them() -> None:
    """An argon2 check takes its memory cost (64 MiB) on top of the process (about 85 MiB serving), and
    the gateway runs up to OTV_STAFF_PASSWORD_CHECKS at once; the README's `kubectl exec ... create-admin`
    adds a second Python process with one more check in the same container. Past the limit the kernel
    kills the pod, with every customer request on it."""
    (container,) = deployment_of("gateway")["spec"]["template"]["spec"]["containers"]
    config = by_name("ConfigMap")["otv-config"]["data"]
    default = GatewaySettings.model_fields["staff_password_checks"].default
    checks = int(config.get("OTV_STAFF_PASSWORD_CHECKS", default))
    per_check = PasswordHasher().memory_cost / 1024  # KiB -> MiB
    process = 96  # MiB, measured 83 after a few hundred requests; some room for the pools and caches
    needed = process + checks * per_check + (process + per_check)
    assert mebibytes(container["resources"]["limits"]["memory"]) >= needed
    # Two checks at once are an ordinary morning: the scheduler must reserve room for them.
    assert mebibytes(container["resources"]["requests"]["memory"]) >= process + checks * per_check


def test_every_pod_runs_as_non_root_on_a_read_only_root_file_system() -> None:
    specs = list(pod_specs())
    assert len(specs) >= len(SERVICE_NAMES) + 1
    for name, pod in specs:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers_of(pod):
            context = container["securityContext"]
            where = f"{name} {container['name']}"
            assert context["runAsNonRoot"] is True, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_has_a_service_and_a_pod_disruption_budget_selecting_its_pods(service: str) -> None:
    labels = deployment_of(service)["spec"]["template"]["metadata"]["labels"]
    pdbs = [p for p in of_kind("PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    assert len(pdbs) == 1, f"{service}: {len(pdbs)} PodDisruptionBudgets"
    spec = pdbs[0]["spec"]
    # It must leave a pod running: at most one of the (at least two) replicas may be disrupted at a time.
    assert spec.get("maxUnavailable") == 1 or spec.get("minAvailable", 0) >= 1
    services = [
        s for s in of_kind("Service") if all(labels.get(k) == v for k, v in s["spec"]["selector"].items())
    ]
    assert [s["metadata"]["name"] for s in services] == [f"otv-{service}"]


@pytest.mark.parametrize("service", HPA_SERVICES)
def test_gateway_and_booking_scale_with_a_horizontal_pod_autoscaler(service: str) -> None:
    hpas = [
        h
        for h in of_kind("HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == f"otv-{service}"
    ]
    assert len(hpas) == 1
    spec = hpas[0]["spec"]
    assert spec["scaleTargetRef"]["kind"] == "Deployment"
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
    assert spec["metrics"], "an HPA needs a metric"


def test_no_deployment_that_an_hpa_scales_names_a_replica_count() -> None:
    """`kubectl apply -k` (every release) sends the manifest's `spec.replicas`: a Deployment that names one
    is scaled back to it under load (6 booking pods to 2 in the middle of a Monday morning) until the HPA
    scales out again. Without the field the HPA alone sets the count (its `minReplicas` is the floor)."""
    scaled = [d for d in of_kind("Deployment") if hpas_of(d)]
    assert {d["metadata"]["name"] for d in scaled} == {f"otv-{s}" for s in HPA_SERVICES}
    for deployment in scaled:
        assert "replicas" not in deployment["spec"], deployment["metadata"]["name"]
    # The other Deployments keep their count, and the restore step that starts OTV again says so.
    for deployment in of_kind("Deployment"):
        if not hpas_of(deployment):
            assert deployment["spec"]["replicas"] >= 2, deployment["metadata"]["name"]
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    restore = notes[notes.index("**Restore to a moment T") : notes.index("**What a restore to T undoes")]
    assert "replicas: 2" not in restore
    assert "kubectl -n otv scale deployment" in restore and "--replicas=2" in restore.split("6.", 1)[1]


def test_the_design_has_no_cronjob_because_the_services_schedule_their_own_work() -> None:
    assert not of_kind("CronJob")
    for path in DEPLOY.rglob("*.y*ml"):
        assert "kind: CronJob" not in path.read_text(encoding="utf-8"), path


def test_a_job_runs_the_migrations_and_then_declares_the_message_topology() -> None:
    (job,) = of_kind("Job")
    pod = job["spec"]["template"]["spec"]
    assert [c["command"] for c in pod["initContainers"]] == [["python", "-m", "shared.migrate"]]
    assert [c["command"] for c in pod["containers"]] == [["python", "-m", "shared.topology"]]
    assert pod["restartPolicy"] in ("OnFailure", "Never")
    secrets = {ref["secretRef"]["name"] for ref in pod["initContainers"][0]["envFrom"] if "secretRef" in ref}
    assert secrets == {f"otv-db-{service}" for service in SERVICE_NAMES}


def test_every_referenced_secret_and_config_map_exists_and_passwords_are_only_in_secrets() -> None:
    secrets = by_name("Secret")
    config_maps = by_name("ConfigMap")
    for name, pod in pod_specs():
        for container in containers_of(pod):
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, f"{name}: {source}"
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, f"{name}: {source}"
            for var in container.get("env", []):
                assert "PASSWORD" not in var["name"] and "SECRET" not in var["name"], f"{name}: {var['name']}"
    for config_map in config_maps.values():
        for key in config_map["data"]:
            assert not re.search(r"PASSWORD|SECRET|_KEY$", key), f"{key} belongs into a Secret"
    # Each service sees its own database password only.
    for service in SERVICE_NAMES:
        (container,) = deployment_of(service)["spec"]["template"]["spec"]["containers"]
        refs = {s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s}
        assert {r for r in refs if r.startswith("otv-db-")} == {f"otv-db-{service}"}
        assert {"otv-internal", "otv-broker"} <= refs


def test_every_setting_in_the_manifests_is_one_a_process_reads() -> None:
    known = known_environment_variables()
    keys = set()
    for config_map in of_kind("ConfigMap"):
        keys |= set(config_map["data"])
    for secret in of_kind("Secret"):
        keys |= set(secret["stringData"])
    for _, pod in pod_specs():
        for container in containers_of(pod):
            keys |= {var["name"] for var in container.get("env", [])}
    assert keys - known == set(), "unknown OTV_* variables (a typo, or a setting that was renamed)"


SETTINGS_OF = {
    "gateway": GatewaySettings,
    "catalog": CatalogSettings,
    "booking": BookingSettings,
    "notifier": NotifierSettings,
    "reporting": ReportingSettings,
}


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_with_the_example_secrets_refuses_to_start_and_names_them_without_values(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap asks for real secrets: a pod whose Secret still holds the example's placeholders, or
    lacks a key so that the public development default applies, must not start."""
    (config_map,) = of_kind("ConfigMap")
    secrets: dict[str, str] = {}
    for secret in of_kind("Secret"):
        secrets |= secret["stringData"]
    for name, value in {**config_map["data"], **secrets}.items():
        monkeypatch.setenv(name, str(value))
    settings_class = SETTINGS_OF[service]
    with pytest.raises(ValueError, match="OTV_INTERNAL_SECRET") as refused:
        settings_class()
    assert "REPLACE" not in str(refused.value) and f"OTV_{service.upper()}_DB_PASSWORD" in str(refused.value)

    for name, value in secrets.items():
        monkeypatch.setenv(name, value.replace("REPLACE-", "real-secret-value-"))
    monkeypatch.setenv("OTV_BROKER_URL", "amqp://otv:a-real-password@otv-rabbitmq:5672/")
    assert settings_class().refuse_dev_defaults is True
    monkeypatch.delenv("OTV_INTERNAL_SECRET")  # a Secret without that key: the public default would apply
    with pytest.raises(ValueError, match="OTV_INTERNAL_SECRET"):
        settings_class()


def settings_of_the_migration_job_command(command: list[str]) -> list[CommonSettings]:
    """The settings each command of the migration Job builds when it starts."""
    module = command[-1]
    if module == "shared.migrate":
        return [settings_for(service) for service in SERVICE_NAMES]
    assert module == "shared.topology", command
    return [TopologySettings()]


def container_environment(container: dict[str, Any], *, real_secrets: bool) -> dict[str, str]:
    config_maps, secrets = by_name("ConfigMap"), by_name("Secret")
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment |= config_maps[source["configMapRef"]["name"]]["data"]
        if "secretRef" in source:
            for name, value in secrets[source["secretRef"]["name"]]["stringData"].items():
                real = "amqp://otv:a-real-password@otv-rabbitmq:5672/" if name == "OTV_BROKER_URL" else value
                environment[name] = real.replace("REPLACE-", "real-secret-value-") if real_secrets else value
    environment |= {var["name"]: var["value"] for var in container.get("env", [])}
    return {name: str(value) for name, value in environment.items()}


@pytest.mark.parametrize("real_secrets", [True, False], ids=["real-secrets", "example-placeholders"])
def test_the_migration_job_starts_with_the_secrets_it_is_given_and_refuses_placeholders(
    real_secrets: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release's first step must run on a fresh cluster: each of the Job's containers gets only the
    Secrets it uses, so the production check of development secrets may ask only for those (it once asked
    the migrations for the internal secret and the broker, which their pod is not given)."""
    job = by_name("Job")["otv-migrate"]
    containers = containers_of(job["spec"]["template"]["spec"])
    assert [c["name"] for c in containers] == ["migrate", "topology"]
    for container in containers:
        for name in [name for name in os.environ if name.startswith("OTV_")]:
            monkeypatch.delenv(name)
        for name, value in container_environment(container, real_secrets=real_secrets).items():
            monkeypatch.setenv(name, value)
        if real_secrets:
            for settings in settings_of_the_migration_job_command(container["command"]):
                assert settings.refuse_dev_defaults is True
        else:
            with pytest.raises(ValueError, match=r"OTV_(BROKER_URL|[A-Z]+_DB_PASSWORD)"):
                settings_of_the_migration_job_command(container["command"])


def test_the_gateway_alone_is_exposed_through_the_ingress() -> None:
    (ingress,) = of_kind("Ingress")
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"otv-gateway"}
    assert ingress["spec"]["tls"]


def test_the_ingress_writes_no_access_log_in_which_customers_tokens_would_stand() -> None:
    """The manage links' tokens travel in the query; ingress-nginx's default log format keeps it."""
    (ingress,) = of_kind("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/enable-access-log"] == "false"
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "enable-access-log" in notes and "log-format-upstream" in notes


def test_the_trusted_proxies_are_a_pod_network_not_a_whole_private_range() -> None:
    """A client inside OTV_TRUSTED_PROXIES can name any address in X-Forwarded-For and so escape every
    per-address limit (bot defence, the staff sign-in lock-out): 10.0.0.0/8 often holds office LANs."""
    (config,) = (doc for doc in of_kind("ConfigMap") if "OTV_TRUSTED_PROXIES" in doc.get("data", {}))
    networks = parse_networks(config["data"]["OTV_TRUSTED_PROXIES"])
    assert networks
    assert all(net.prefixlen >= (16 if net.version == 4 else 48) for net in networks), networks
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "never client or office networks" in " ".join(notes.split())


def test_every_secret_the_manifests_name_is_explained_to_the_operator() -> None:
    """A Secret nobody creates stops its pod, or (the Ingress's certificate) makes the controller serve a
    certificate no browser accepts: each one must be in secrets.example.yaml or the README's Secrets."""
    named = {
        source["secretRef"]["name"]
        for _, pod in pod_specs()
        for container in containers_of(pod)
        for source in container.get("envFrom", [])
        if "secretRef" in source
    }
    named |= {tls["secretName"] for ingress in of_kind("Ingress") for tls in ingress["spec"]["tls"]}
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    secrets_section = notes[notes.index("### 3. Secrets") : notes.index("### 4.")]
    for name in named:
        assert name in by_name("Secret") or f"`{name}`" in secrets_section, name


def test_the_minimal_pgbouncer_ini_authenticates_every_role_with_the_passwords_of_its_secret() -> None:
    """With `auth_type` but neither `auth_file` nor `auth_query` PgBouncer knows no user and refuses every
    login: all pods unready. A managed PostgreSQL lets nobody read the SCRAM verifiers for an auth_query,
    so the README's way is a userlist with the five roles' passwords, which changes with every password."""
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    start = notes.index("A minimal `pgbouncer.ini`")
    pooler = notes[start : notes.index("**A pod that dies inside a transaction", start)]
    code = [line[4:] for line in pooler.splitlines() if line.startswith("    ")]
    # The userlist's lines ("role" "password") stand in a block of their own after the ini.
    users = [line for line in code if line.startswith('"')]
    ini = configparser.ConfigParser(comment_prefixes=(";",))
    ini.read_string("\n".join(line for line in code if not line.startswith('"')))
    section = ini["pgbouncer"]
    assert section["auth_type"] == "scram-sha-256" and section["pool_mode"] == "transaction"
    assert section["auth_file"].endswith("/userlist.txt")
    # One line per role, each with the password of that role's Secret.
    assert sorted(line.split()[0].strip('"') for line in users) == sorted(f"otv_{s}" for s in SERVICE_NAMES)
    assert all(f"otv-db-{line.split()[0].strip(chr(34))[4:]}" in line for line in users)
    rotation = notes[notes.index("### 6. Rotating secrets") :]
    assert "userlist.txt" in rotation[: rotation.index("\n## ")]


def test_the_first_administrator_comes_after_the_first_release_and_compose_says_how() -> None:
    """Followed in order, the cluster's steps once asked for `kubectl exec deploy/otv-gateway` before any
    step had created the gateway; the compose section never said how to get a first sign-in at all."""
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    cluster = notes[notes.index("## A cluster") : notes.index("## Backup and restore")]
    numbers = [int(n) for n in re.findall(r"^### (\d+)\. ", cluster, re.MULTILINE)]
    assert numbers == list(range(1, len(numbers) + 1))
    first_release = cluster.index("    kubectl apply -k deploy/k8s\n")
    assert first_release < cluster.index("create-admin")
    compose_section = notes[notes.index("## One machine: compose") : notes.index("## A cluster")]
    assert "docker compose -f deploy/compose.yaml exec gateway python -m services.gateway create-admin" in (
        compose_section
    )
    assert "create-admin" in GATEWAY_COMMANDS


def test_the_readiness_texts_send_the_operator_to_the_database_not_to_rabbitmq() -> None:
    """/readyz fails only when the database does not answer; a broker outage is "degraded" and leaves the
    pod ready (shared/web.py). The probes' comments and the alert must not say otherwise."""
    for service in SERVICE_NAMES:
        text = (K8S / f"{service}.yaml").read_text(encoding="utf-8")
        comment = text[: text.index("readinessProbe:")].rsplit("# Ready:", 1)[1]
        assert "database answers" in comment and "RabbitMQ outage leaves it ready" in comment, service
    rules = yaml.safe_load((DEPLOY / "alerts.yaml").read_text(encoding="utf-8"))
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "OTVPodNotReady"]
    description = rule["annotations"]["description"]
    assert "PostgreSQL" in description and "RabbitMQ outage does not make pods unready" in description


def test_the_restore_steps_name_every_queue_outbox_and_command_as_the_code_has_them() -> None:
    """The backup and restore section is followed under pressure: its purge loop must name every
    consumer's queues, its republish step every outbox, and its commands and audit action must exist."""
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    section = notes[notes.index("## Backup and restore") : notes.index("## How it scales")]
    loop = re.search(r"for q in ([^;]+);", section)
    assert loop is not None
    # The integrations' queues exist only where OTV_INTEGRATIONS is on: purged apart, under that condition.
    assert set(loop.group(1).split()) == set(CONSUMERS) - {INTEGRATIONS}
    assert f"`otv.{INTEGRATIONS}`" in section and "OTV_INTEGRATIONS=true" in section
    for service in SERVICE_NAMES:
        assert f"{service}.outbox" in section, service
    assert "python -m services.reporting retention" in section and "retention" in REPORTING_COMMANDS
    assert "action = 'erase'" in section and "erase" in ACTION_SEGMENTS
    for needed in ("OTV_MAIL_HASH_KEY", "otv_audit_owner", "python -m shared.topology", "Art. 30"):
        assert needed in section, needed


def test_rabbitmq_is_a_three_node_cluster_of_the_operator() -> None:
    (cluster,) = [doc for _, doc in documents() if doc["kind"] == "RabbitmqCluster"]
    assert cluster["spec"]["replicas"] == 3
    assert cluster["spec"]["image"].startswith("rabbitmq:3.13")


# --- compose -------------------------------------------------------------------------------------------
@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def test_compose_runs_every_service_with_its_database_and_broker_and_the_mail_sink() -> None:
    services = compose()["services"]
    for service in SERVICE_NAMES:
        spec = services[service]
        assert spec["command"] == ["python", "-m", f"services.{service}"]
        assert spec["depends_on"]["setup"]["condition"] == "service_completed_successfully"
        assert spec["environment"][f"OTV_{service.upper()}_DB_PASSWORD"]
        assert spec["read_only"] is True
        other_passwords = [
            k
            for k in spec["environment"]
            if k.endswith("_DB_PASSWORD") and k != f"OTV_{service.upper()}_DB_PASSWORD"
        ]
        assert not other_passwords, f"{service} sees {other_passwords}"
    assert services["postgres"]["image"] == "postgres:16"
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    assert services["mailsink"]["command"] == ["python", "-m", "tools.mailsink"]
    assert services["notifier"]["environment"]["OTV_SMTP_HOST"] == "mailsink"
    setup = " ".join(services["setup"]["command"])
    assert "python -m shared.migrate" in setup and "python -m shared.topology" in setup
    assert services["setup"]["build"]["dockerfile"] == "deploy/Dockerfile"
    upstreams = services["gateway"]["environment"]
    assert all(
        upstreams[f"OTV_{s.upper()}_URLS"] == f"http://{s}:8080" for s in SERVICE_NAMES if s != "gateway"
    )


def test_compose_mounts_files_that_exist_and_sets_only_known_settings() -> None:
    known = known_environment_variables()
    for name, spec in compose()["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
        if name in ("postgres", "rabbitmq", "broker-policy"):
            continue
        unknown = {k for k in spec.get("environment", {}) if k not in known}
        assert not unknown, f"{name}: {unknown}"


# --- the image ------------------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_the_dockerfile_runs_as_a_non_root_user_with_a_health_check() -> None:
    # Not built here (no Docker engine on this machine): the instructions are checked as text.
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    assert args.get("PYTHON_IMAGE", "").startswith("python:3.11.")
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [rest for keyword, rest in final_stage if keyword == "USER"]
    assert users, "the final stage needs a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    healthchecks = [rest for keyword, rest in final_stage if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "healthcheck.py" in healthchecks[0]
    assert "/healthz" in (DEPLOY / "healthcheck.py").read_text(encoding="utf-8")
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "requirements.runtime.txt" in runs and "pip check" in runs
    assert ("CMD", '["python", "-m", "services.gateway"]') in final_stage
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for copied in re.findall(r"^COPY (?!--from)(\S+)", (DEPLOY / "Dockerfile").read_text(), re.M):
        assert f"!{copied}" in ignored, f"{copied} is copied but excluded from the build context"


def test_the_base_image_is_pinned_so_that_a_rebuild_of_a_release_gets_the_same_system() -> None:
    """A floating `python:3.11-slim` moves to another Python patch release and Debian release (OpenSSL,
    libc) under the same OTV tag: a rebuild of one git tag would not be the image that was scanned."""
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    image = args["PYTHON_IMAGE"]
    match = re.fullmatch(r"python:3\.11\.(\d+)-slim-([a-z]+)@sha256:([0-9a-f]{64})", image)
    assert match, f"{image}: pin the patch release, the Debian release and the digest"
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    table_row = next(line for line in notes.splitlines() if line.startswith("| `Dockerfile`"))
    assert f"3.11.{match.group(1)}" in table_row and match.group(2) in table_row
    # How to move the pin on: the command that gives the new digest.
    assert "docker buildx imagetools inspect" in notes and "PYTHON_IMAGE" in notes


def test_the_runtime_requirements_are_the_locked_closure_of_the_runtime_dependencies() -> None:
    module = load_script(DEPLOY / "runtime_requirements.py")
    expected = module.render()
    actual = (DEPLOY / "requirements.runtime.txt").read_text(encoding="utf-8")
    assert actual == expected, (
        "deploy/requirements.runtime.txt is out of date: "
        ".venv/bin/python deploy/runtime_requirements.py > deploy/requirements.runtime.txt"
    )
    lock = set((ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines())
    pinned = [line for line in actual.splitlines() if not line.startswith("#")]
    assert set(pinned) <= lock
    names = {canonicalize_name(line.split("==")[0]) for line in pinned}
    # Everything the closure needs is pinned in the lock ...
    assert module.closure(module.direct_dependencies()) == names
    # ... and no test or development tool gets into the image.
    assert not names & {
        "pytest",
        "ruff",
        "mypy",
        "playwright",
        "hypothesis",
        "schemathesis",
        "kubernetes-validate",
    }


def third_party_imports() -> dict[str, set[str]]:
    first_party = {"shared", "services", "tools", "deploy"}
    found: dict[str, set[str]] = {}
    for folder in ("shared", "services", "tools"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in first_party:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_services_import_only_packages_of_the_runtime_requirements() -> None:
    runtime = {
        canonicalize_name(line.split("==")[0])
        for line in (DEPLOY / "requirements.runtime.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    distributions = metadata.packages_distributions()
    missing = {}
    for module, files in third_party_imports().items():
        owners = {canonicalize_name(d) for d in distributions.get(module, [])}
        if not owners & runtime:
            missing[module] = sorted(files)[:3]
    assert not missing, (
        f"imported by the services but not in the image (add to pyproject dependencies): {missing}"
    )


# --- alerting rules -------------------------------------------------------------------------------------
def metric_names_in_code() -> set[str]:
    names = set()
    pattern = re.compile(r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"(otv_[a-z0-9_]+)\"", re.S)
    for folder in ("shared", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return names


@pytest.mark.req("R51")
def test_the_alerting_rules_cover_the_important_metrics_and_name_only_existing_ones() -> None:
    rules = yaml.safe_load((DEPLOY / "alerts.yaml").read_text(encoding="utf-8"))
    all_rules = [rule for group in rules["groups"] for rule in group["rules"]]
    names = [r["alert"] for r in all_rules]
    assert len(names) == len(set(names))
    for rule in all_rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
    exprs = "\n".join(r["expr"] for r in all_rules)
    known = metric_names_in_code()
    for name in set(re.findall(r"\b(otv_[a-z0-9_]+)", exprs)):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in known or base in known, f"{name} is not a metric of the code"
    for needed in (
        'up{job="otv"} == 0',  # a service down
        "kube_pod_status_ready",  # not ready
        "otv_outbox_lag_seconds",
        'outcome="dead"',
        'status=~"5.."',
        "otv_mails_total",
        "histogram_quantile(0.95",
        "otv_retention_last_run_timestamp_seconds",  # R34: personal data outliving their period
        'absent(otv_retention_last_run_timestamp_seconds{job="otv", service="reporting"})',  # never ran
        'absent(otv_retention_last_run_timestamp_seconds{job="otv", service="gateway-audit"})',  # own label
        "otv_webhook_subscriptions_paused",  # a receiving system that failed for a day (R50)
        "otv_webhook_deliveries_dropped_total",
        'otv_staff_login_lockouts_total{job="otv", scope="account"}',  # a distributed password guess
    ):
        assert needed in exprs, needed
