"""docker/ read as data and checked against the code: no Docker engine runs here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from messenger.management.commands.run_role import ROLES
from tests.deploy.support import (
    DEPLOYMENT_ONLY_VARIABLES,
    DOCKER,
    ROOT,
    app_services,
    env_example,
    load_compose,
    settings_variables,
)

SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|(^|_)KEY($|_)|ACCESS_KEY")
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def replicas(service: dict[str, Any]) -> int:
    return int((service.get("deploy") or {}).get("replicas", 1))


def test_every_courier_service_starts_through_the_entrypoint_with_a_known_role(
    compose: dict[str, Any],
) -> None:
    services = app_services(compose)
    assert set(services) == {"migrate", "web", "worker", "beat"}
    for name, service in services.items():
        assert "entrypoint" not in service, f"{name} must keep the image's entrypoint"
        command = service["command"]
        assert isinstance(command, list) and command[0] in ROLES, name
    roles = {service["command"][0] for service in services.values()}
    assert roles == set(ROLES)


def test_the_image_entrypoint_is_the_script_and_the_script_knows_every_role() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in dockerfile
    script = (DOCKER / "entrypoint.sh").read_text()
    case = re.search(r"^\s*(web \| worker \| beat \| migrate)\)", script, re.MULTILINE)
    assert case, "the entrypoint's role case changed: keep it in step with run_role.ROLES"
    assert set(case.group(1).replace(" ", "").split("|")) == set(ROLES)
    assert "manage.py run_role" in script
    assert (DOCKER / "entrypoint.sh").stat().st_mode & 0o111, "entrypoint.sh is not executable"


def test_there_is_exactly_one_beat_and_at_least_two_asgi_nodes(compose: dict[str, Any]) -> None:
    services = app_services(compose)
    beats = [s for s in services.values() if s["command"][0] == "beat"]
    assert len(beats) == 1 and replicas(beats[0]) == 1
    webs = [s for s in services.values() if s["command"][0] == "web"]
    assert sum(replicas(s) for s in webs) >= 2
    workers = [s for s in services.values() if s["command"][0] == "worker"]
    assert len(workers) == 1
    # Beat must not also run inside a worker (`celery worker -B`).
    assert all("-B" not in s["command"] for s in workers)


def test_postgres_redis_and_a_tls_proxy_are_part_of_the_deployment(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["caddy"]["image"].startswith("caddy:")
    # Only the proxy is reachable from outside.
    exposed = [name for name, s in services.items() if s.get("ports")]
    assert exposed == ["caddy"]
    assert compose["networks"]["internal"]["internal"] is True


def test_redis_keeps_nothing_on_disk(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--save") + 1] == ""
    assert command[command.index("--appendonly") + 1] == "no"
    assert "volumes" not in compose["services"]["redis"]


def test_the_database_and_the_blobs_live_on_volumes(compose: dict[str, Any]) -> None:
    assert "db:/var/lib/postgresql/data" in compose["services"]["db"]["volumes"]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    blob_dir = re.search(r"BLOB_STORAGE_DIR=(\S+)", dockerfile).group(1)
    for name in ("web", "worker"):
        assert f"blobs:{blob_dir}" in compose["services"][name]["volumes"], name
    assert {"db", "blobs"} <= set(compose["volumes"])


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":  # one-shot (migrate)
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    assert "HEALTHCHECK" in (DOCKER / "Dockerfile").read_text()


def test_healthchecks_call_the_roles_the_services_run(compose: dict[str, Any]) -> None:
    for name, service in app_services(compose).items():
        test = service["healthcheck"].get("test")
        if service.get("restart") == "no":
            continue
        assert test[:3] == ["CMD", "python", "/app/docker/healthcheck.py"], name
        assert test[3] == service["command"][0], name
        if test[3] == "web":
            port = service["command"][service["command"].index("--port") + 1]
            assert test[4] == port


def test_app_services_wait_for_migrations(compose: dict[str, Any]) -> None:
    for name in ("web", "worker", "beat"):
        depends = compose["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["db"]["condition"] == "service_healthy"


def test_every_variable_the_settings_read_is_in_env_example(tmp_path: Path) -> None:
    read = settings_variables(tmp_path)
    assert "MASTER_KEY" in read and "S3_BUCKET" in read  # the probe itself works
    _, named = env_example()
    missing = sorted(read - named)
    assert not missing, f"add these to docker/.env.example: {missing}"
    # The other direction (a variable nothing reads any more) is left to review: a
    # rename in an app would otherwise fail here before docker/ could follow.
    assert DEPLOYMENT_ONLY_VARIABLES <= named


def test_compose_variables_are_in_env_example() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    _, named = env_example()
    assert used <= named, sorted(used - named)


def _environments(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        for key, value in environment.items():
            found.append((name, key, str(value)))
    return found


def test_no_secret_value_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for service, key, value in _environments(compose):
        assert not URL_WITH_PASSWORD.search(value), f"{service}.{key} holds a password"
        if SECRET_NAME.search(key):
            assert key.endswith("_FILE") and value.startswith("/run/secrets/"), (
                f"{service}.{key} must come from a docker secret via {key}_FILE"
            )
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"}, f"secret {name} must be a file"
        assert secret["file"].startswith("./secrets/")
    # The secret files themselves are never committed.
    assert "secrets/" in (DOCKER / ".gitignore").read_text().split()


def test_no_secret_value_is_written_in_env_example() -> None:
    assigned, named = env_example()
    assert {"SECRET_KEY", "MASTER_KEY", "S3_SECRET_ACCESS_KEY"} <= named
    for key, value in assigned.items():
        assert not URL_WITH_PASSWORD.search(value), key
        if SECRET_NAME.search(key):
            assert value == "", f"{key} has a value in .env.example"


def test_the_image_is_slim_multi_stage_and_runs_as_a_user() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]
    assert len(stages) >= 2
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.MULTILINE)
    final = stages[-1]
    assert "build-essential" in stages[0]
    for tool in ("build-essential", "gcc", "apt-get install", "pip install"):
        assert tool not in final, f"{tool} in the runtime stage"
    user = re.search(r"^USER (\S+)", final, re.MULTILINE)
    assert user and user.group(1).split(":")[0] not in ("root", "0")
    # Everything the runtime stage copies from the repository exists.
    for source in re.findall(r"^COPY (?!--from)(\S+(?: \S+)*) \S+$", final, re.MULTILINE):
        for part in source.split():
            assert (ROOT / part).exists(), part


def test_the_proxy_speaks_only_tls_1_3_sends_hsts_and_logs_nothing() -> None:
    caddyfile = (DOCKER / "Caddyfile").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in caddyfile.splitlines())
    tls_blocks = re.findall(r"^\s*tls\b[^\n]*\{([^}]*)\}", code, re.MULTILINE)
    assert len(tls_blocks) == 2
    assert all("protocols tls1.3" in block for block in tls_blocks)
    assert "Strict-Transport-Security" in code and "max-age=63072000" in code
    assert not re.search(r"^\s*log\b", code, re.MULTILINE), "no access log"
    assert "respond /metrics 404" in code
    assert re.search(r"name web\s+port 8000", code)
