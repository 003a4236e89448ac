"""docker-compose.yml and its load balancer's configuration, checked without a Docker engine.

The `clickhouse` profile runs PostgreSQL, a ClickHouse server, two ingest replicas behind
HAProxy, and the sync service. What can be checked here is checked: which services each
profile runs, that every variable a service reads is set and valid (the product's own
`Settings`, with the compose defaults substituted), that the URLs name the services and
credentials that exist, that the ports line up from the host through the load balancer to
the replicas, and that HAProxy accepts the configuration (`haproxy -c`, from Debian's package,
which scripts/test installs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.clickhouse import ClickHouseTarget
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

CLICKHOUSE_PROFILE = {"clickhouse", "ingest-1", "ingest-2", "ingest-lb", "sync-clickhouse"}
POSTGRES_PROFILE = {"ingest", "sync"}
IN_EVERY_PROFILE = {"postgres", "migrate"}
REPLICAS = ("ingest-1", "ingest-2")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}; $$ is a literal $.
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?-)([^}]*)|(:?\?)([^}]*))?\}")


def interpolate(value: str, environment: dict[str, str]) -> str:
    """A compose value with its variables substituted as `docker compose` does."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default_op, default, required_op, message = match.groups()
        value = environment.get(name)
        if required_op is not None and (value is None or (required_op == ":?" and not value)):
            pytest.fail(f"${{{name}}} is required: {message}")
        if default_op is not None and (value is None or (default_op == ":-" and not value)):
            return str(default)
        return value or ""

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def profile(compose: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """The services `docker compose --profile NAME up` starts."""
    return {
        service: spec
        for service, spec in services(compose).items()
        if "profiles" not in spec or name in spec["profiles"]
    }


def environment(spec: dict[str, Any], shell: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as the container gets it, with nothing set in the shell or
    .env (the defaults written in the file), or with `shell`."""
    raw = spec.get("environment", {})
    assert isinstance(raw, dict), "environment is written as a mapping"
    return {key: interpolate(str(value), shell or {}) for key, value in raw.items()}


def settings_of(spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The product's settings from a service's environment alone (as in its container)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    env = environment(spec)
    unknown = set(env) - set(Settings.model_fields)
    assert not unknown, f"variables no setting reads (misspelt?): {sorted(unknown)}"
    return Settings(**env)  # type: ignore[arg-type]


def dockerfile_env() -> dict[str, str]:
    """The ENV the image sets (`KEY=value` pairs, continued lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            pairs |= dict(re.findall(r"(\w+)=(\S+)", line))
    return pairs


def published(spec: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) of each `ports` entry."""
    pairs = []
    for entry in spec.get("ports", []):
        parts = interpolate(str(entry), {}).split(":")
        pairs.append((int(parts[-2]), int(parts[-1])))
    return pairs


def haproxy_config() -> str:
    return (ROOT / "haproxy" / "haproxy.cfg").read_text()


def haproxy_sections(text: str) -> dict[str, list[str]]:
    """Each section ('backend ingest', ...) with its lines, comments left out."""
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            current = line.strip()
            sections[current] = []
        else:
            sections[current].append(line.strip())
    return sections


def test_each_profile_runs_its_own_ingest_and_sync_beside_the_shared_database(
    compose: dict[str, Any],
) -> None:
    assert set(profile(compose, "clickhouse")) == CLICKHOUSE_PROFILE | IN_EVERY_PROFILE
    assert set(profile(compose, "postgres")) == POSTGRES_PROFILE | IN_EVERY_PROFILE
    # The two profiles publish the same host ports, and each service once per profile.
    for name in ("clickhouse", "postgres"):
        ports = [host for spec in profile(compose, name).values() for host, _ in published(spec)]
        assert len(ports) == len(set(ports)), (name, ports)
        assert {8000, 8001} <= set(ports)


def test_clickhouse_is_a_pinned_current_release(compose: dict[str, Any]) -> None:
    image = services(compose)["clickhouse"]["image"]
    match = re.fullmatch(r"clickhouse/clickhouse-server:(\d+)\.(\d+)(?:\.[\d.]+)?", image)
    assert match, f"{image}: the official image, pinned to a release (not latest)"
    assert (int(match[1]), int(match[2])) >= (24, 8)
    proxy = services(compose)["ingest-lb"]["image"]
    assert re.fullmatch(r"haproxy:\d+\.\d+(?:\.\d+)?", proxy), proxy


def test_every_service_reads_settings_that_are_set_and_valid(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    all_services = services(compose)
    postgres_env = environment(all_services["postgres"])
    clickhouse_env = environment(all_services["clickhouse"])
    image_env = dockerfile_env()
    # Replicas listen on every interface of their container, or the load balancer cannot reach
    # them; the image says so.
    assert image_env["INGEST_HOST"] == image_env["SYNC_HOST"] == "0.0.0.0"  # noqa: S104
    for name in (*REPLICAS, "sync-clickhouse", "ingest", "sync", "migrate"):
        spec = all_services[name]
        settings = settings_of(spec, monkeypatch)
        env = environment(spec)
        # Set, not left to a default meant for one machine.
        assert {"DATABASE_URL", "DATA_DIR", "PUBLIC_URL", "SYNC_URL"} <= set(env), name
        database = urlsplit(settings.DATABASE_URL)
        assert (database.hostname, database.port) == ("postgres", 5432), name
        assert database.username == postgres_env["POSTGRES_USER"], name
        assert database.password == postgres_env["POSTGRES_PASSWORD"], name
        assert database.path == "/" + postgres_env["POSTGRES_DB"], name
        # Every service and replica shares the volume where ADMIN_TOKEN and SECRET_KEY are
        # generated once (by migrate), so all read the same ones.
        assert f"data:{settings.DATA_DIR}" in spec["volumes"], name
        in_clickhouse = name in CLICKHOUSE_PROFILE
        assert (settings.clickhouse_url is not None) == in_clickhouse, name
        if in_clickhouse:
            assert settings.clickhouse_url is not None
            target = ClickHouseTarget.from_url(settings.clickhouse_url)
            assert (target.host, target.port) == ("clickhouse", 9000), name
            assert target.user == clickhouse_env["CLICKHOUSE_USER"], name
            assert target.password == clickhouse_env["CLICKHOUSE_PASSWORD"], name
            assert target.database == clickhouse_env["CLICKHOUSE_DB"], name
            assert spec["depends_on"]["clickhouse"] == {"condition": "service_healthy"}, name
        # The relay reaches the sync service of the same profile, on its port.
        sync_url = urlsplit(settings.sync_service_url)
        assert sync_url.hostname == ("sync-clickhouse" if in_clickhouse else "sync"), name
        assert sync_url.port == settings.SYNC_PORT, name
        if name != "migrate":
            assert spec["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }, name
    # A password given in the shell or .env reaches both ends of each URL.
    shell = {"POSTGRES_PASSWORD": "pg-secret", "CLICKHOUSE_PASSWORD": "ch-secret"}
    replica = environment(all_services["ingest-1"], shell)
    assert ":pg-secret@postgres:" in replica["DATABASE_URL"]
    assert ":ch-secret@clickhouse:" in replica["WAREHOUSE_URL"]
    assert environment(all_services["clickhouse"], shell)["CLICKHOUSE_PASSWORD"] == "ch-secret"


def test_ports_line_up_from_the_host_through_the_load_balancer_to_each_replica(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    all_services = services(compose)
    sections = haproxy_sections(haproxy_config())
    frontend = sections["frontend webhooks"]
    bind = next(line for line in frontend if line.startswith("bind "))
    listen_port = int(bind.rsplit(":", 1)[1])
    # The host reaches the load balancer, and the webhook URLs handed out name that port.
    lb = all_services["ingest-lb"]
    assert published(lb) == [(8000, listen_port)]
    for name in REPLICAS:
        settings = settings_of(all_services[name], monkeypatch)
        assert urlsplit(settings.PUBLIC_URL).port == published(lb)[0][0]
        # Replicas are reached through the load balancer only.
        assert "ports" not in all_services[name]
    # The configuration the container reads is this file.
    assert "./haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    assert set(lb["depends_on"]) == set(REPLICAS)
    # Round robin over both replicas, each on the port it listens on, health-checked on /readyz.
    backend = sections[f"backend {frontend[-1].split()[-1]}"]
    assert "balance roundrobin" in backend
    assert "option httpchk GET /readyz" in backend
    assert "http-check expect status 200" in backend
    assert any(line.startswith("default-server check") for line in backend)
    servers = {line.split()[1]: line.split()[2] for line in backend if line.startswith("server ")}
    assert servers == {
        name: f"{name}:{settings_of(all_services[name], monkeypatch).INGEST_PORT}"
        for name in REPLICAS
    }
    # The containers' own health checks ask the port each service listens on.
    for name in (*REPLICAS, "sync-clickhouse"):
        settings = settings_of(all_services[name], monkeypatch)
        port = settings.SYNC_PORT if name.startswith("sync") else settings.INGEST_PORT
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(
            all_services[name]["healthcheck"]["test"]
        )
    assert f"/dev/tcp/127.0.0.1/{listen_port}" in " ".join(lb["healthcheck"]["test"])
    assert "monitor-uri /lb-health" in frontend
    assert "/lb-health" in " ".join(lb["healthcheck"]["test"])
    # Nothing rewrites the request: no header or body changes on the way.
    rewriting = ("http-request set-header", "http-request del-header", "http-request replace",
                 "compression", "http-buffer-request")  # fmt: skip
    assert not [line for lines in sections.values() for line in lines if line.startswith(rewriting)]


def haproxy_binary() -> str:
    found = shutil.which("haproxy")
    if found:
        return found
    unavailable = os.environ.get("HAPROXY_UNAVAILABLE")
    if unavailable or os.environ.get("TEST_POSTGRES_URL") or os.environ.get("CI"):
        # Under scripts/test, which installs it: its absence fails the test, with the reason.
        pytest.fail(f"haproxy must be installed for this test: {unavailable or 'not on PATH'}")
    pytest.skip("haproxy is not installed: scripts/test installs it from Debian's packages")


def test_haproxy_accepts_the_configuration() -> None:
    """`haproxy -c`: the whole configuration parsed and checked. The replicas' names only
    resolve inside Compose's network, so the only warnings allowed are about those."""
    checked = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(ROOT / "haproxy" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    assert "Configuration file is valid" in output
    warnings = [line for line in output.splitlines() if "[WARNING]" in line]
    assert all("could not resolve address 'ingest-" in line for line in warnings), warnings


def test_haproxy_check_refuses_a_broken_configuration(tmp_path: Path) -> None:
    """The check above can fail: a backend with an unknown balance algorithm is refused."""
    broken = tmp_path / "haproxy.cfg"
    broken.write_text(haproxy_config().replace("balance roundrobin", "balance round-robin"))
    checked = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(broken)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode != 0
