"""deploy/compose.yaml holds together (there is no container engine here to run it): its
services, the files it mounts, and the addresses each piece uses to reach the next one
(Prometheus -> the gateway's API listener, Grafana -> Prometheus, the gateway ->
PostgreSQL) agree; the gateway runs the image as the Dockerfile builds it, on
PostgreSQL with two workers; its environment is one the gateway accepts."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.deploy.promql import DEPLOY, ROOT
from tests.process import free_port
from tests.test_container import exec_form, image_env, instructions

COMPOSE = DEPLOY / "compose.yaml"
DOCS = ROOT / "docs" / "observability.md"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def mounts(name: str) -> dict[str, Path]:
    """Container path -> the repository file or folder a service mounts there (named
    volumes left out)."""
    found = {}
    for volume in service(name).get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            found[target] = (COMPOSE.parent / source).resolve()
    return found


def in_container(name: str, path: str) -> Path:
    """The repository file a service sees at ``path`` through its mounts."""
    wanted = PurePosixPath(path)
    for target, source in mounts(name).items():
        if wanted == PurePosixPath(target):
            return source
        if PurePosixPath(target) in wanted.parents:
            return source / wanted.relative_to(target)
    raise AssertionError(f"{name} does not mount {path}")


def host_and_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def published(name: str) -> dict[int, str]:
    """Container port -> the host address it is published on."""
    found = {}
    for port in service(name).get("ports", []):
        host_ip, host_port, container_port = str(port).split(":")
        assert host_port == container_port, port
        found[int(container_port)] = host_ip
    return found


def test_the_services_and_what_they_mount_exist() -> None:
    assert set(compose()["services"]) == {"gateway", "postgres", "prometheus", "grafana"}
    for name in compose()["services"]:
        for source in mounts(name).values():
            assert source.exists(), f"{name} mounts {source}, which is not in the repository"
            assert ROOT in source.parents, source
        # Nothing is published beyond this machine.
        assert set(published(name).values()) <= {"127.0.0.1"}, name
    named = {
        volume.split(":")[0]
        for definition in compose()["services"].values()
        for volume in definition.get("volumes", [])
        if not volume.startswith(".")
    }
    assert named == set(compose()["volumes"])


def test_the_gateway_is_the_repository_image_on_postgres_with_two_workers() -> None:
    gateway = service("gateway")
    context = (COMPOSE.parent / gateway["build"]["context"]).resolve()
    assert context == ROOT and (context / gateway["build"]["dockerfile"]).exists()
    # ENTRYPOINT statusgate; the command is the image's CMD plus two workers.
    [entrypoint] = instructions("ENTRYPOINT")
    [cmd] = instructions("CMD")
    assert exec_form(entrypoint) == ["statusgate"]
    assert gateway["command"] == [*exec_form(cmd), "--workers", "2"]

    store = urlsplit(gateway["environment"]["STATUSGATE_STORE"])
    database = service("postgres")["environment"]
    assert store.scheme == "postgresql"
    assert (store.hostname, store.port) == ("postgres", 5432)
    assert store.username == database["POSTGRES_USER"]
    assert store.password == database["POSTGRES_PASSWORD"]
    assert store.path == f"/{database['POSTGRES_DB']}"
    assert parse_qs(store.query) == {"schema": ["statusgate"]}
    # It starts once PostgreSQL answers, which PostgreSQL's health check tells.
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in service("postgres")["healthcheck"]["test"]

    # The image's listeners (its ENV, not overridden here) are the published ports.
    env = image_env()
    listeners = ("STATUSGATE_HTTP", "STATUSGATE_GRPC", "STATUSGATE_API")
    assert not set(listeners) & set(gateway["environment"])
    assert set(published("gateway")) == {host_and_port(env[name])[1] for name in listeners}


def test_prometheus_scrapes_the_gateways_api_listener_and_loads_the_rules() -> None:
    prometheus = service("prometheus")
    flags = dict(flag.split("=", 1) for flag in prometheus["command"])
    config_path = flags["--config.file"]
    config_file = in_container("prometheus", config_path)
    assert config_file == DEPLOY / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_file.read_text())
    # Rule files resolve against the config file's folder, in the container as here.
    for rule_file in config["rule_files"]:
        path = PurePosixPath(config_path).parent / rule_file
        assert in_container("prometheus", str(path)) == DEPLOY / "prometheus" / "alerts.yml"
    [job] = config["scrape_configs"]
    assert job["job_name"] == "statusgate"  # StatusgateDown watches up{job="statusgate"}
    assert job.get("metrics_path", "/metrics") == "/metrics"
    [target] = [t for static in job["static_configs"] for t in static["targets"]]
    host, port = host_and_port(target)
    assert host == "gateway"
    assert port == host_and_port(image_env()["STATUSGATE_API"])[1]
    assert 9090 in published("prometheus")  # Prometheus's own port, which Grafana uses


def test_grafana_reads_the_stacks_prometheus_and_provisions_the_dashboard() -> None:
    # Grafana reads every file of these two folders.
    provisioning = "/etc/grafana/provisioning"
    datasources = in_container("grafana", f"{provisioning}/datasources/prometheus.yaml")
    dashboards = in_container("grafana", f"{provisioning}/dashboards/statusgate.yaml")
    [datasource] = yaml.safe_load(datasources.read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    url = urlsplit(datasource["url"])
    assert url.hostname in compose()["services"] and url.hostname == "prometheus"
    assert url.port in published("prometheus")
    [provider] = yaml.safe_load(dashboards.read_text())["providers"]
    folder = in_container("grafana", provider["options"]["path"])
    assert folder == DEPLOY / "grafana" / "dashboards"
    assert (folder / "statusgate.json").exists()
    home = service("grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert in_container("grafana", home) == folder / "statusgate.json"


def test_the_documented_credentials_are_the_stacks() -> None:
    docs = DOCS.read_text()
    gateway = service("gateway")["environment"]
    [token] = set(re.findall(r"Bearer (\S+?)[`']", docs))
    assert (
        hashlib.sha256(token.encode()).hexdigest()
        == gateway["STATUSGATE_CLIENTS__APP__TOKEN_SHA256"]
    )
    grafana = service("grafana")["environment"]
    assert (
        f"`{grafana['GF_SECURITY_ADMIN_USER']}` / `{grafana['GF_SECURITY_ADMIN_PASSWORD']}`" in docs
    )
    database = service("postgres")["environment"]
    assert f"password `{database['POSTGRES_PASSWORD']}`" in docs


def test_the_gateways_environment_is_accepted(tmp_path: Path) -> None:
    """check-config of the image's config under the stack's environment (the store moved
    to a local file: check-config opens it, and there is no `postgres` host here)."""
    env = {
        **os.environ,
        **{
            name: f"0.0.0.0:{free_port()}"
            for name in ("STATUSGATE_HTTP", "STATUSGATE_GRPC", "STATUSGATE_API")
        },
        **service("gateway")["environment"],
        "STATUSGATE_STORE": f"sqlite:///{tmp_path / 'statusgate.db'}",
    }

    def check_config() -> subprocess.CompletedProcess[str]:
        config = ROOT / "examples" / "container.toml"
        return subprocess.run(
            [sys.executable, "-m", "statusgate.cli", "check-config", str(config)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = check_config()
    assert result.returncode == 0, result.stdout + result.stderr
    # The variables did reach the gateway: a bad permission in the same place is refused.
    env["STATUSGATE_CLIENTS__APP__PERMISSIONS"] = '["read", "everything"]'
    refused = check_config()
    assert refused.returncode != 0 and "clients.app.permissions" in refused.stdout
