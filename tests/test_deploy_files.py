"""The deployment files: docker-compose.yml, Dockerfile, .env.example, docs/operations.md.

Static and fast (no Docker, no network): the compose file against the official Compose
Specification schema (shipped inside check-jsonschema), and the rules the operations issue
sets for health checks, scaling, dependencies, configuration and the runbook.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_FILES = (COMPOSE, ROOT / "deploy" / "compose.wechat-fake.yml")
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
RUNBOOK = ROOT / "docs" / "operations.md"
API_MD = ROOT.parent / "shared" / "api.md"  # the handbook beside the repo (CI has a copy)

SCALABLE = ("gateway", "auth", "catalog", "booking", "notify", "payment")
OBSERVABILITY = ("jaeger", "prometheus", "grafana")
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
SERVICES = ("auth", "catalog", "booking", "notify", "payment")


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    """The compose file as YAML sees it (anchors and `<<` merges resolved)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def settings_env_vars() -> dict[str, str]:
    """Every variable `Settings.from_env` reads (env var → field)."""
    from shared.settings import Settings, env_var

    return {env_var(name): name for name in Settings.model_fields}


def config_table_vars(markdown: str) -> set[str]:
    """The variables in the first column of the `Configuration` table of a markdown page."""
    section = re.search(r"^## Configuration.*?(?=^## )", markdown, re.M | re.S)
    assert section, "no `## Configuration` section"
    names: set[str] = set()
    for line in section.group(0).splitlines():
        if line.startswith("|"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    assert names, "empty configuration table"
    return names


def env_example_vars() -> dict[str, str]:
    """Names in .env.example: active `NAME=value` lines and documented `# NAME=value`."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found.setdefault(match.group(2), "commented" if match.group(1) else "active")
    return found


def service_env(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "use the mapping form of `environment`"
    return env


# --- compose ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_passes_the_compose_specification_schema(path: Path) -> None:
    tool = Path(sys.executable).parent / "check-jsonschema"
    assert tool.exists(), "install the dev extra: pip install -e '.[dev]'"
    result = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_every_component(services: dict[str, Any], compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose Specification has no `version:`"
    expected = {"rabbitmq", "mongo", "mongo-init", "proxy", *SCALABLE}
    assert expected <= set(services)
    assert services["rabbitmq"]["image"].startswith("rabbitmq:4-management")
    assert services["mongo"]["image"].startswith("mongo:8")
    assert services["proxy"]["image"].startswith(("nginx:", "caddy:"))


def test_every_service_has_a_health_check(services: dict[str, Any]) -> None:
    one_shots = one_shot_services(services)
    assert one_shots == {"mongo-init", "broker-users"}
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if name in one_shots:
            assert check.get("disable") is True, f"{name}: say explicitly that it has none"
            continue
        assert not check.get("disable"), f"{name}: health check disabled"
        test = check.get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


def one_shot_services(services: dict[str, Any]) -> set[str]:
    """Services others wait for with `service_completed_successfully`."""
    return {
        dep
        for service in services.values()
        for dep, spec in (service.get("depends_on") or {}).items()
        if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully"
    }


def test_mongo_is_a_replica_set_initiated_once(services: dict[str, Any]) -> None:
    mongo, init = services["mongo"], services["mongo-init"]
    command = mongo["command"]
    assert "--replSet" in command and command[command.index("--replSet") + 1] == "rs0"
    assert "--bind_ip_all" in command
    assert "isWritablePrimary" in " ".join(mongo["healthcheck"]["test"])
    assert init.get("restart", "no") == "no"
    assert init["depends_on"]["mongo"]["condition"] == "service_started"
    script = (ROOT / "deploy" / "mongo" / "init-replica-set.js").read_text(encoding="utf-8")
    assert "rs.initiate" in script and "NotYetInitialized" in script  # idempotent


def test_durable_data_lives_in_named_volumes(
    services: dict[str, Any], compose: dict[str, Any]
) -> None:
    volumes = set(compose.get("volumes") or {})
    for name, target in (("rabbitmq", "/var/lib/rabbitmq"), ("mongo", "/data/db")):
        mounts = {m.split(":")[1]: m.split(":")[0] for m in services[name]["volumes"]}
        assert mounts.get(target) in volumes, f"{name}: {target} is not a named volume"
    # RabbitMQ keys its data by node name (rabbit@<hostname>): it must not change
    assert services["rabbitmq"].get("hostname")


@pytest.mark.parametrize("name", SCALABLE)
def test_scalable_services_have_no_fixed_name_address_or_host_port(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert "container_name" not in service
    assert "ports" not in service
    # a fixed hostname would give every replica the same lease owner id (host:pid)
    assert "hostname" not in service
    networks = service.get("networks") or []
    if isinstance(networks, dict):
        for spec in networks.values():
            assert not (spec or {}).get("ipv4_address"), f"{name}: fixed address"


@pytest.mark.parametrize("name", SCALABLE)
def test_python_processes_share_one_image(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert service["build"] in (".", {"context": "."}), name
    module = "gateway" if name == "gateway" else f"services.{name}"
    assert service["command"] == ["python", "-m", module]
    assert service["stop_grace_period"] == "30s"
    assert service.get("restart") in ("unless-stopped", "always", "on-failure")
    images = {services[n].get("image") for n in SCALABLE}
    assert len(images) == 1, f"one image for every Python process, got {images}"


def test_services_check_their_own_ops_endpoint(services: dict[str, Any]) -> None:
    for name in SERVICES:
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "/healthz" in test and "9100" in test, name
        assert service_env(services[name]).get("GUAHAO_OPS_PORT") in ("9100", 9100), name
    gateway = " ".join(services["gateway"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/healthz" in gateway


def test_dependencies_wait_with_conditions(services: dict[str, Any]) -> None:
    for name, service in services.items():
        env = service_env(service)
        deps = service.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: use the long form of depends_on"
        for dep, spec in deps.items():
            assert isinstance(spec, dict) and spec.get("condition"), f"{name} → {dep}"
        if "AMQP_URL" in env:
            assert deps.get("rabbitmq", {}).get("condition") == "service_healthy", name
            assert "@rabbitmq:5672/" in env["AMQP_URL"], name
        if "MONGO_URL" in env:
            assert deps.get("mongo", {}).get("condition") == "service_healthy", name
            assert (
                deps.get("mongo-init", {}).get("condition") == "service_completed_successfully"
            ), name
            assert "@mongo:27017/?replicaSet=rs0" in env["MONGO_URL"], name
    for name in SERVICES:
        assert "AMQP_URL" in service_env(services[name]) and "MONGO_URL" in service_env(
            services[name]
        ), name
    assert "AMQP_URL" in service_env(services["gateway"])
    assert services["proxy"]["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_proxy_publishes_the_only_public_port_and_balances_gateways(
    services: dict[str, Any],
) -> None:
    published = {name for name, s in services.items() if s.get("ports")}
    operator_uis = {"rabbitmq", *OBSERVABILITY}
    assert published <= {"proxy", *operator_uis}
    assert any(str(p).endswith(":8080") for p in services["proxy"]["ports"])
    for name in operator_uis:
        for port in services[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: operator UI on loopback only"
    conf = (ROOT / "deploy" / "nginx" / "guahao.conf").read_text(encoding="utf-8")
    assert re.search(r"resolver\s+127\.0\.0\.11\b", conf)
    assert re.search(r"set\s+\$\w+\s+http://gateway:8080;", conf)
    assert re.search(r"proxy_pass\s+\$\w+;", conf), "a variable upstream: re-resolved"
    gateway_env = service_env(services["gateway"])
    assert gateway_env["GATEWAY_HOST"] == "0.0.0.0"
    assert gateway_env.get("GUAHAO_TRUSTED_PROXIES"), "trust the proxy's X-Forwarded-For"


def test_compose_passes_every_setting_to_some_process(services: dict[str, Any]) -> None:
    passed: set[str] = set()
    for name in SCALABLE:
        passed |= set(service_env(services[name]))
    missing = sorted(set(settings_env_vars()) - passed)
    assert not missing, f"docker-compose.yml passes none of these settings: {missing}"


def test_shared_secrets_are_required_and_given_only_where_used(services: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for var in (
        "GUAHAO_JWT_PRIVATE_KEY",
        "GUAHAO_PII_KEY",
        "GUAHAO_WEBHOOK_KEY",
        "GUAHAO_ADMIN_PASSWORD",
        "WECHAT_APPID",
        "WECHAT_SECRET",
        "GUAHAO_RPC_KEY",
        "GUAHAO_JWT_PUBLIC_KEYS",
    ):
        assert re.search(r"\$\{" + var + r":\?", text), f"{var} must be required (${{{var}:?…}})"
    holders = {n for n in SCALABLE if "GUAHAO_JWT_PRIVATE_KEY" in service_env(services[n])}
    assert holders == {"auth"}
    holders = {n for n in SCALABLE if "GUAHAO_PII_KEY" in service_env(services[n])}
    assert holders == {"auth"}


# --- .env.example --------------------------------------------------------------------------


def test_env_example_lists_every_setting() -> None:
    listed = env_example_vars()
    missing = sorted(set(settings_env_vars()) - set(listed))
    assert not missing, f".env.example lacks settings of shared/settings.py: {missing}"


def test_env_example_lists_the_configuration_tables() -> None:
    tables = config_table_vars((ROOT / "README.md").read_text(encoding="utf-8"))
    if API_MD.exists():
        tables |= config_table_vars(API_MD.read_text(encoding="utf-8"))
    missing = sorted(tables - set(env_example_vars()))
    assert not missing, f".env.example lacks variables of the configuration table: {missing}"


def test_env_example_covers_every_compose_variable() -> None:
    used = set()
    for path in COMPOSE_FILES:
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8")))
    missing = sorted(used - set(env_example_vars()))
    assert not missing, f"docker-compose.yml interpolates variables .env.example lacks: {missing}"


def test_env_example_secrets_are_placeholders_with_instructions() -> None:
    listed = env_example_vars()
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for var in (
        "GUAHAO_JWT_PRIVATE_KEY",
        "GUAHAO_PII_KEY",
        "GUAHAO_WEBHOOK_KEY",
        "GUAHAO_ADMIN_PASSWORD",
        "RABBITMQ_GATEWAY_PASSWORD",
        "WECHAT_SECRET",
    ):
        assert listed.get(var) == "active", var
        assert re.search(rf"^{var}=$", text, re.M), f"{var}: no real secret in the example"
    assert "Ed25519PrivateKey" in text and "token_bytes(64)" in text


def test_make_env_generates_secrets_the_services_accept(tmp_path: Path) -> None:
    from services.auth.keys import PiiKeys, SigningKeyMaterial
    from shared.jwt_keys import parse_public_keys
    from shared.messaging.identity import RpcKeys

    out = tmp_path / ".env"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "make-env.py"),
            "--output",
            str(out),
            "--wechat-appid",
            "wx_test",
            "--wechat-secret",
            "s3cret",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o077 == 0, "the .env file must not be group/world readable"
    values = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            value = match.group(2)
            if value.startswith('"') and value.endswith('"'):  # compose's dotenv rule
                value = value[1:-1].replace("\\n", "\n")
            values[match.group(1)] = value
    signing = SigningKeyMaterial.from_pem(values["GUAHAO_JWT_PRIVATE_KEY"].encode())
    assert list(parse_public_keys(values["GUAHAO_JWT_PUBLIC_KEYS"])) == [signing.kid]
    RpcKeys.parse(values["GUAHAO_RPC_KEY"])
    PiiKeys.from_bytes(base64.b64decode(values["GUAHAO_PII_KEY"], validate=True))
    assert len(base64.b64decode(values["GUAHAO_WEBHOOK_KEY"], validate=True)) == 32
    assert len(values["GUAHAO_ADMIN_PASSWORD"]) >= 16
    for kind in ("OPERATOR", *(k.upper() for k in SCALABLE)):
        assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", values[f"RABBITMQ_{kind}_PASSWORD"])
    for var in ("MONGO_ROOT_PASSWORD", "MONGO_APP_PASSWORD"):
        assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", values[var]), var
    assert 6 <= len(values["MONGO_REPLICA_KEY"]) <= 1024
    assert values["WECHAT_APPID"] == "wx_test"
    again = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "make-env.py"), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0, "must refuse to overwrite an existing .env"


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_slim_base_non_root_and_gateway_by_default() -> None:
    instructions = dockerfile_instructions()
    froms = [arg for kw, arg in instructions if kw == "FROM"]
    assert froms and froms[-1].split()[0] == "python:3.11-slim"
    users = [arg for kw, arg in instructions if kw == "USER"]
    assert users, "no USER: the processes would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, (kw, _) in enumerate(instructions) if kw == "USER")
    assert all(kw != "RUN" for kw, _ in instructions[last_user:]), "RUN after USER"
    assert not any(kw == "HEALTHCHECK" for kw, _ in instructions), "checks live in compose"
    cmd = [arg for kw, arg in instructions if kw == "CMD"]
    assert cmd and cmd[-1] == '["python", "-m", "gateway"]'
    env = " ".join(arg for kw, arg in instructions if kw == "ENV")
    assert "PYTHONUNBUFFERED=1" in env and "GUAHAO_DATA_DIR=/data" in env


def test_dockerfile_installs_dependencies_before_copying_the_source() -> None:
    instructions = dockerfile_instructions()
    copies = [(i, arg) for i, (kw, arg) in enumerate(instructions) if kw == "COPY"]
    first_pyproject = next(i for i, arg in copies if arg.split()[0] == "pyproject.toml")
    install = next(
        i for i, (kw, arg) in enumerate(instructions) if kw == "RUN" and "pip install" in arg
    )
    include = re.search(
        r"include\s*=\s*\[(.*?)\]", (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    )
    assert include is not None
    packages = [p.rstrip("*") for p in re.findall(r'"([a-z_]+\*?)"', include.group(1))]
    assert packages
    for package in packages:
        copy = next((i for i, arg in copies if arg.split()[0].rstrip("/") == package), None)
        assert copy is not None, f"the image lacks the package {package}/"
        assert first_pyproject < install < copy, "deps must be installed before the source"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list the build context"
    assert not any(
        p.lstrip("!").startswith((".env", ".venv", ".data", ".git"))
        for p in patterns
        if p.startswith("!")
    )


# --- runbook -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    [
        "scale",
        "backup",
        "rotate",
        "dead letter",
        "replica set",
        "sharded",
        "quorum",
        "SIGTERM",
        "mongodump",
        "/readyz",
    ],
)
def test_runbook_covers(topic: str) -> None:
    text = RUNBOOK.read_text(encoding="utf-8").lower()
    spelled = {"backup": ("backup", "back up"), "dead letter": ("dead letter", "dead-letter")}
    assert any(s.lower() in text for s in spelled.get(topic, (topic,))), topic


def test_runbook_names_every_metric() -> None:
    """Every metric the code registers is explained in docs/operations.md."""
    pattern = re.compile(
        r"""(?:counter|histogram|gauge|Counter|Histogram|Gauge)\(\s*["']"""
        r"""(guahao_[a-z0-9_]+)["']"""
    )
    names: set[str] = set()
    for package in ("gateway", "shared", "services"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert "guahao_http_requests_total" in names
    text = RUNBOOK.read_text(encoding="utf-8")
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"docs/operations.md does not explain these metrics: {missing}"


def test_env_with_its_secrets_is_never_committed() -> None:
    """`deploy/make-env.py` writes every secret into `.env`: git must ignore it."""
    for name in (".env", ".env.production"):
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{name} is not git-ignored"
    kept = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT, check=False)
    assert kept.returncode == 1, ".env.example must stay tracked"


def test_mongo_requires_auth_and_services_log_in_with_credentials(services: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for var in ("MONGO_ROOT_PASSWORD", "MONGO_APP_PASSWORD", "MONGO_REPLICA_KEY"):
        assert re.search(r"\$\{" + var + r":\?", text), f"{var} must be required"
    mongo = services["mongo"]
    assert "--keyFile" in mongo["command"]
    assert "MONGO_INITDB_ROOT_PASSWORD" in service_env(mongo)
    for name in SERVICES:
        url = str(service_env(services[name])["MONGO_URL"])
        assert re.match(r"^mongodb://[^:@/]+:[^@/]+@mongo:27017/", url), (name, url)
        assert "authSource=admin" in url
    script = (ROOT / "deploy" / "mongo" / "init-replica-set.js").read_text(encoding="utf-8")
    assert "createUser" in script and "readWriteAnyDatabase" in script
    assert (ROOT / "deploy" / "mongo" / "mongo-entrypoint.sh").exists()


def test_the_gateway_shares_no_network_with_the_store(services: dict[str, Any]) -> None:
    def networks(service: dict[str, Any]) -> set[str]:
        return set(service.get("networks") or ["default"])

    store_nets = networks(services["mongo"])
    assert not networks(services["gateway"]) & store_nets
    assert not networks(services["proxy"]) & store_nets
    for name in SERVICES:
        assert networks(services[name]) & store_nets, f"{name} cannot reach mongo"
        assert networks(services[name]) & networks(services["rabbitmq"])


# --- supply chain ----------------------------------------------------------------------------


def lock_check_in(
    tmp_path: Path, pyproject: str | None = None, dev_lock: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run deploy/check-lock.py on a copy of the repo's pyproject and locks (edited)."""
    (tmp_path / "deploy").mkdir(exist_ok=True)
    (tmp_path / "deploy" / "check-lock.py").write_text(
        (ROOT / "deploy" / "check-lock.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "pyproject.toml").write_text(
        pyproject or (ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "requirements.lock").write_text(
        (ROOT / "requirements.lock").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "requirements-dev.lock").write_text(
        dev_lock or (ROOT / "requirements-dev.lock").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return subprocess.run(
        [sys.executable, str(tmp_path / "deploy" / "check-lock.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_locks_match_pyproject(tmp_path: Path) -> None:
    result = lock_check_in(tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (
            lambda t: t.replace('"tzdata>=2024.1",', '"tzdata>=2024.1",\n  "msgspec>=0.18",'),
            "msgspec",
        ),  # added without `make lock`
        (lambda t: t.replace('"tzdata>=2024.1",', ""), "no longer declares it"),  # removed
        (lambda t: t.replace('"pydantic>=2.10,<3"', '"pydantic>=3"'), "does not satisfy"),
    ],
)
def test_a_pyproject_change_without_relocking_is_caught(
    tmp_path: Path, edit: Any, complaint: str
) -> None:
    changed = edit((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    result = lock_check_in(tmp_path, pyproject=changed)
    assert result.returncode == 1 and complaint in result.stderr, result.stderr


def test_a_pin_without_hashes_is_caught(tmp_path: Path) -> None:
    text = (ROOT / "requirements-dev.lock").read_text(encoding="utf-8")
    stripped = re.sub(r"(?m)^(pytest-timeout==[^\s]+) \\\n(\s+--hash=\S+( \\)?\n)+", r"\1\n", text)
    assert stripped != text
    result = lock_check_in(tmp_path, dev_lock=stripped)
    assert result.returncode == 1 and "pytest-timeout" in result.stderr, result.stderr


def test_image_and_venv_install_only_hash_checked_locked_packages() -> None:
    runs = " ".join(arg for kw, arg in dockerfile_instructions() if kw == "RUN")
    assert "--require-hashes" in runs and "requirements.lock" in runs
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile
    assert re.search(r"^test: .*check-lock", makefile, re.M)


# --- observability (issue 16) ----------------------------------------------------------


def registered_metrics() -> set[str]:
    """Every metric name the code registers, plus prometheus-client's process collector."""
    pattern = re.compile(
        r"""(?:counter|histogram|gauge|Counter|Histogram|Gauge)\(\s*["']"""
        r"""(guahao_[a-z0-9_]+)["']"""
    )
    names: set[str] = set()
    for package in ("gateway", "shared", "services"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return names | {"process_cpu_seconds_total", "process_resident_memory_bytes"}


def metrics_in(expr: str) -> set[str]:
    """The guahao/process metric names a PromQL expression reads (series suffixes off)."""
    found = set()
    for name in re.findall(r"\b((?:guahao|process)_[a-z0-9_]+)", expr):
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix) and name.removesuffix(suffix) in registered_metrics():
                name = name.removesuffix(suffix)
        found.add(name)
    return found


def test_compose_ships_jaeger_prometheus_and_grafana(services: dict[str, Any]) -> None:
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    mounts = {name: [str(v) for v in services[name].get("volumes", [])] for name in OBSERVABILITY}
    assert (
        "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in mounts["prometheus"]
    )
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts["prometheus"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts["grafana"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts["grafana"]
    for name in OBSERVABILITY:  # they reach (and are reached by) the gateway and services
        assert "backend" in services[name]["networks"], name
    grafana_env = service_env(services["grafana"])
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


@pytest.mark.parametrize("name", SCALABLE)
def test_every_python_process_exports_traces_to_jaeger(services: dict[str, Any], name: str) -> None:
    from shared.tracing import check_environment, wanted

    env = {k: str(v) for k, v in service_env(services[name]).items()}
    assert (
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318}"
    )
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_TRACES_SAMPLER"] == "${OTEL_TRACES_SAMPLER:-parentbased_traceidratio}"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "${OTEL_TRACES_SAMPLER_ARG:-0.1}"
    # with the defaults interpolated, the process turns tracing on and accepts the settings
    defaults = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v) for k, v in env.items()}
    assert wanted(defaults)
    check_environment(defaults)
    assert "OTEL_SERVICE_NAME" not in env, "each process names itself (gateway, booking, …)"


def test_prometheus_scrapes_every_process_and_rabbitmq() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [gateway] = jobs["guahao-gateway"]["dns_sd_configs"]
    assert gateway["names"] == ["gateway"] and gateway["port"] == 8080
    [services] = jobs["guahao-services"]["dns_sd_configs"]
    assert set(services["names"]) == set(SERVICES) and services["port"] == 9100
    rabbit_targets = [
        t
        for name in ("rabbitmq", "rabbitmq-queues")
        for c in jobs[name]["static_configs"]
        for t in c["targets"]
    ]
    assert rabbit_targets == ["rabbitmq:15692", "rabbitmq:15692"]
    plugins = (ROOT / "deploy" / "rabbitmq" / "enabled_plugins").read_text(encoding="utf-8")
    assert "rabbitmq_prometheus" in plugins


ALERTS = (
    "GuahaoBookingP99High",
    "GuahaoHttp5xxRatioHigh",
    "GuahaoOutboxBacklogOld",
    "GuahaoEventsDeadLettered",
    "GuahaoWechatSendFailures",
    "GuahaoWebhookFailures",
)


def test_alert_rules_cover_the_issue_and_read_real_metrics() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert set(ALERTS) <= set(alerts)
    runbook = RUNBOOK.read_text(encoding="utf-8")
    for name, rule in alerts.items():
        used = metrics_in(rule["expr"])
        assert used, f"{name} reads no guahao metric"
        assert used <= registered_metrics(), f"{name} reads unknown {used - registered_metrics()}"
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
        assert f"`{name}`" in runbook, f"docs/operations.md does not explain {name}"
    assert 'route="/api/v1/appointments"' in alerts["GuahaoBookingP99High"]["expr"]
    assert "histogram_quantile(0.99" in alerts["GuahaoBookingP99High"]["expr"]


def test_grafana_provisions_the_dashboard_and_its_queries_read_real_metrics() -> None:
    import json

    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "guahao.yml").read_text(encoding="utf-8")
    )
    uids = {d["uid"]: d for d in sources["datasources"]}
    assert uids["prometheus"]["url"] == "http://prometheus:9090"
    assert uids["jaeger"]["type"] == "jaeger"
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "guahao.yml").read_text(encoding="utf-8")
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    [path] = (GRAFANA / "dashboards").glob("*.json")
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert dashboard["uid"] and len(panels) >= 10
    read: set[str] = set()
    for panel in panels:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]
            read |= metrics_in(target["expr"])
    assert (
        read - {"process_cpu_seconds_total", "process_resident_memory_bytes"}
        <= registered_metrics()
    )
    # RED per route and per RPC method, event lag, outbox, dead letters, WeChat, webhooks
    assert {
        "guahao_http_requests_total",
        "guahao_http_request_duration_seconds",
        "guahao_rpc_handled_total",
        "guahao_rpc_handle_seconds",
        "guahao_event_lag_seconds",
        "guahao_outbox_oldest_age_seconds",
        "guahao_outbox_backlog",
        "guahao_dead_lettered_total",
        "guahao_notify_messages_total",
        "guahao_notify_webhook_attempts_total",
    } <= read


# --- the `cluster` profile: three RabbitMQ nodes ----------------------------------------------


def test_cluster_profile_adds_two_rabbitmq_nodes_that_join_the_first(
    services: dict[str, Any], compose: dict[str, Any]
) -> None:
    conf = (ROOT / "deploy" / "rabbitmq" / "rabbitmq-cluster.conf").read_text(encoding="utf-8")
    assert re.search(r"^cluster_formation\.peer_discovery_backend = classic_config$", conf, re.M)
    peers = set(re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = (\S+)$", conf, re.M))
    assert peers == {"rabbit@rabbitmq", "rabbit@rabbitmq-2", "rabbit@rabbitmq-3"}
    join = (ROOT / "deploy" / "rabbitmq" / "join-cluster.sh").read_text(encoding="utf-8")
    assert "/node1/.erlang.cookie" in join and "exec docker-entrypoint.sh rabbitmq-server" in join
    assert "profiles" not in services["rabbitmq"], "node 1 runs in every deployment"
    volumes = set(compose["volumes"])
    for name in ("rabbitmq-2", "rabbitmq-3"):
        node = services[name]
        assert node["profiles"] == ["cluster"], name
        assert node["image"] == services["rabbitmq"]["image"]
        assert node["hostname"] == name, "its data is keyed by its node name"
        mounts = {m.split(":")[1]: m.split(":")[0] for m in node["volumes"]}
        assert mounts["/var/lib/rabbitmq"] in volumes - {"rabbitmq-data"}, name
        assert mounts["/node1"] == "rabbitmq-data" and "/node1:ro" in " ".join(node["volumes"])
        assert mounts["/etc/rabbitmq/rabbitmq.conf"] == "./deploy/rabbitmq/rabbitmq-cluster.conf"
        assert node["entrypoint"] == ["sh", "/deploy/join-cluster.sh"]
        assert node["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert "rabbitmq-diagnostics" in " ".join(node["healthcheck"]["test"])
        assert not node.get("ports"), "the management UI is node 1's"
    data = [
        m.split(":")[0]
        for n in ("rabbitmq-2", "rabbitmq-3")
        for m in services[n]["volumes"]
        if m.split(":")[1] == "/var/lib/rabbitmq"
    ]
    assert len(set(data)) == 2, "each node its own data volume"


@pytest.mark.parametrize("name", SCALABLE)
def test_every_process_lists_the_three_nodes_as_its_own_broker_user(
    services: dict[str, Any], name: str
) -> None:
    env = service_env(services[name])
    nodes = env["AMQP_URLS"].split(",")
    assert nodes[0] == env["AMQP_URL"], "node 1 first: it is there with or without the profile"
    assert [re.sub(r"^amqp://[^@]+@", "", n) for n in nodes] == [
        "rabbitmq:5672/",
        "rabbitmq-2:5672/",
        "rabbitmq-3:5672/",
    ]
    users = {re.match(r"^amqp://([^:]+):", n).group(1) for n in nodes}  # type: ignore[union-attr]
    assert users == {name}
