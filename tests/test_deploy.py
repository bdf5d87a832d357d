"""The deployment files in deploy/, checked against the code they deploy.

No container engine or cluster runs here (`docker compose config` needs a
Compose plugin this machine does not have), so the checks are Python's:
compose.yaml and the Kubernetes manifests are parsed, every command a
Flywheel container runs is parsed by the real click command tree, every
variable is a real setting, ports agree with the proxy, and the Kubernetes
manifests pass kubernetes-validate's schemas. The Grafana dashboard's and the
alert rules' PromQL only name metrics the app exports at /metrics.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import click
import httpx
import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from flywheel.server.cli.main import cli
from flywheel.server.secrets import new_key
from flywheel.server.settings import ENV_FALLBACKS, ENV_VARS, load_settings
from flywheel.server.testing.live import free_port

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
NGINX = DEPLOY / "nginx" / "flywheel.conf"
KUBERNETES = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "flywheel.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
# Oldest and newest Kubernetes the manifests are validated against.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
# Read by botocore, not by Flywheel's settings (server/store/factory.py says so).
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
IMAGE_UID = 10001


# ---------------------------------------------------------------------------
# What is real: the CLI's commands and options, the settings' variables.
# ---------------------------------------------------------------------------


def parse_cli(args: list[str]) -> click.Context:
    """`flywheel ARGS` parsed by the real command tree (options, types, ranges), not run."""
    ctx = click.Context(cli, info_name="flywheel")
    command, rest = cli, list(args)
    while isinstance(command, click.Group):
        assert rest, f"flywheel {' '.join(args)}: names a group, not a command"
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"flywheel {' '.join(args)}: no command {name!r}"
        ctx = click.Context(sub, info_name=name, parent=ctx) if isinstance(sub, click.Group) \
            else sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


def plugin_variables() -> set[str]:
    """FLYWHEEL_* variables plugins read: named in their source and documented in docs/."""
    docs = " ".join(p.read_text() for p in (REPO / "docs").glob("*.md"))
    named = set()
    for source in (REPO / "plugins").rglob("*.py"):
        named |= set(re.findall(r"\bFLYWHEEL_[A-Z0-9_]+\b", source.read_text()))
    return {name for name in named if name in docs}


def known_variables() -> set[str]:
    return set(ENV_VARS.values()) | set(ENV_FALLBACKS.values()) | plugin_variables() | AWS_CREDENTIALS


def assert_real_variables(env: dict[str, str], where: str) -> None:
    unknown = sorted(set(env) - known_variables())
    assert not unknown, f"{where}: not a Flywheel setting: {unknown}"
    # The values as load_settings reads them: a bad URL scheme or a non-number fails here.
    load_settings({k: v for k, v in env.items() if k in ENV_VARS.values() or k in ENV_FALLBACKS.values()})


def test_the_cli_check_refuses_what_the_cli_refuses():
    assert parse_cli(["worker", "--max-jobs", "4", "--metrics-port", "9100"]).params["metrics_port"] == 9100
    assert parse_cli(["migrate", "--check"]).params == {"check": True}
    for bad in (["serve", "--replicas", "2"], ["worker", "--max-jobs", "0"], ["nope"], ["keys"]):
        with pytest.raises((click.UsageError, AssertionError)):
            parse_cli(bad)


def test_the_variable_check_refuses_what_settings_refuse():
    assert {"DATABASE_URL", "REDIS_URL", "FLYWHEEL_SECRET_KEY", "FLYWHEEL_RLAAS_UPSTREAM_HOSTS"} <= known_variables()
    with pytest.raises(AssertionError, match="FLYWHEEL_REPLICAS"):
        assert_real_variables({"FLYWHEEL_REPLICAS": "2"}, "test")
    with pytest.raises(Exception, match="DATABASE_URL"):
        assert_real_variables({"DATABASE_URL": "mysql://db/flywheel"}, "test")


# ---------------------------------------------------------------------------
# deploy/compose.yaml
# ---------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$`, as `docker compose config` does."""

    def one(match: re.Match) -> str:
        if match.group(1) == "$":
            return "$"
        name, op, arg = match.group(2), match.group(3), match.group(4)
        value = env.get(name)
        unset = value is None or (value == "" and op and op.startswith(":"))
        if op and op.endswith("?") and unset:
            raise ValueError(f"{name}: {arg}")
        if op and op.endswith("-") and unset:
            return arg
        return value or ""

    return _VARIABLE.sub(one, text)


def env_example() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return {k.strip(): v.strip() for k, v in pairs}


def filled_env() -> dict[str, str]:
    """The example with its secrets filled in, as an operator's deploy/.env is."""
    env = env_example()
    return {**env, "POSTGRES_PASSWORD": "pw-" + uuid.uuid4().hex, "S3_SECRET_KEY": "s3-" + uuid.uuid4().hex,
            "FLYWHEEL_SECRET_KEY": new_key()}


def compose(env: dict[str, str] | None = None) -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), filled_env() if env is None else env))


def flywheel_services(doc: dict) -> dict[str, dict]:
    """Services running the Flywheel image (the Containerfile's ENTRYPOINT is `flywheel`)."""
    image = doc["x-flywheel"]["image"]
    return {name: s for name, s in doc["services"].items() if s.get("image") == image}


def test_the_image_entrypoint_is_the_cli():
    # A service's `command` is what follows `flywheel`: true only while the ENTRYPOINT says so.
    assert re.search(r'^ENTRYPOINT \["flywheel"\]$', (REPO / "Containerfile").read_text(), re.M)


def test_compose_runs_every_role_from_the_one_image():
    doc = compose()
    services = doc["services"]
    assert {"postgres", "redis", "s3", "migrate", "api", "worker", "proxy"} <= set(services)
    ours = flywheel_services(doc)
    assert set(ours) == {"migrate", "api", "worker"}
    assert all(s["build"] == {"context": "..", "dockerfile": "Containerfile"} for s in ours.values())
    assert (COMPOSE.parent / ours["api"]["build"]["context"] / "Containerfile").is_file()
    roles = {name: parse_cli(s["command"]).command.name for name, s in ours.items()}
    assert roles == {"migrate": "migrate", "api": "serve", "worker": "worker"}
    assert int(services["api"]["deploy"]["replicas"]) >= 2 and int(services["worker"]["deploy"]["replicas"]) >= 2


def test_compose_environment_is_real_settings_that_load():
    doc = compose()
    for name, service in flywheel_services(doc).items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert_real_variables(env, f"compose service {name}")
        settings = load_settings(env)
        assert settings.database_url.startswith("postgresql://") and "@postgres:5432/" in settings.database_url
        assert settings.redis_url == "redis://redis:6379/0" and settings.store_url.startswith("s3://")
        assert settings.s3_endpoint_url == "http://s3:8333" and settings.secret_key
        assert not settings.embedded


def test_compose_needs_the_secrets_and_commits_none():
    example = env_example()
    for secret in ("FLYWHEEL_SECRET_KEY", "POSTGRES_PASSWORD", "S3_SECRET_KEY"):
        assert example[secret] == "", f"{secret} must be empty in .env.example"
        with pytest.raises(ValueError, match=secret):
            compose({**filled_env(), secret: ""})
    assert (DEPLOY / ".gitignore").read_text().split() == [".env"]
    # Every variable compose.yaml interpolates is documented in the example.
    used = {m.group(2) for m in _VARIABLE.finditer(COMPOSE.read_text()) if m.group(2)}
    assert used <= set(example), sorted(used - set(example))


def test_compose_starts_in_order_migrate_first():
    services = compose()["services"]
    for name, service in services.items():
        for target in service.get("depends_on", {}):
            assert target in services, f"{name} depends on unknown {target}"
    assert services["migrate"]["restart"] == "no" and services["migrate"]["healthcheck"] == {"disable": True}
    assert {k: v["condition"] for k, v in services["migrate"]["depends_on"].items()} == {
        "postgres": "service_healthy", "redis": "service_healthy", "s3": "service_healthy"}
    for role in ("api", "worker"):
        assert services[role]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["proxy"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    for name in ("postgres", "redis", "s3", "api", "worker", "proxy"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"


def test_compose_ports_agree_with_the_proxy_and_the_cli():
    services = compose()["services"]
    conf = NGINX.read_text()
    api = parse_cli(services["api"]["command"]).params
    assert api["host"] == "0.0.0.0"
    upstreams = re.findall(r"^\s*server\s+([\w-]+):(\d+)\b", conf, re.M)
    assert upstreams == [("api", str(api["port"]))]
    assert services["api"]["expose"] == [str(api["port"])]
    assert f"127.0.0.1:{api['port']}/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    listen = re.findall(r"^\s*listen\s+(\d+);", conf, re.M)
    assert len(listen) == 1
    assert [p.split(":")[-1] for p in services["proxy"]["ports"]] == listen
    assert f"127.0.0.1:{listen[0]}/healthz" in " ".join(services["proxy"]["healthcheck"]["test"])
    assert services["proxy"]["volumes"] == ["./nginx/flywheel.conf:/etc/nginx/conf.d/default.conf:ro"]
    metrics = parse_cli(services["worker"]["command"]).params["metrics_port"]
    assert services["worker"]["expose"] == [str(metrics)]
    assert f"127.0.0.1:{metrics}/metrics" in " ".join(services["worker"]["healthcheck"]["test"])
    # The proxy lets through the largest body the API accepts (it answers 413 itself).
    size = re.search(r"client_max_body_size (\d+)m;", conf)
    assert size and int(size.group(1)) * 1024 * 1024 >= load_settings({}).max_body_bytes


def test_compose_containers_are_read_only_and_keep_no_shared_spool():
    for name, service in flywheel_services(compose()).items():
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
        # /data is the image's VOLUME: one per container. A named volume there would be shared
        # by every replica, and two processes must never drain the same spool.
        assert not any(str(v).split(":")[1:2] == ["/data"] for v in service.get("volumes", [])), name


def test_compose_mounts_files_that_exist():
    mounts = [v for s in compose()["services"].values() for v in s.get("volumes", []) if v.startswith("./")]
    assert len(mounts) >= 5
    for mount in mounts:
        assert (DEPLOY / mount.split(":")[0]).exists(), mount


def test_prometheus_scrapes_every_replica_and_worker_where_they_listen():
    services = compose()["services"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yaml"]
    assert any(v.endswith("/etc/prometheus/alerts.yaml:ro") for v in services["prometheus"]["volumes"])
    targets = {job["job_name"]: (job["dns_sd_configs"][0]["names"], job["dns_sd_configs"][0]["port"])
               for job in config["scrape_configs"]}
    assert targets == {
        "flywheel-api": (["api"], parse_cli(services["api"]["command"]).params["port"]),
        "flywheel-worker": (["worker"], parse_cli(services["worker"]["command"]).params["metrics_port"])}
    assert {s for s, v in services.items() if v.get("profiles")} == {"prometheus", "grafana"}


# ---------------------------------------------------------------------------
# deploy/kubernetes/
# ---------------------------------------------------------------------------


def manifests() -> list[dict]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


def pod_specs() -> dict[str, dict]:
    out = {f"Deployment/{n}": d["spec"]["template"]["spec"] for n, d in by_kind("Deployment").items()}
    out |= {f"Job/{n}": d["spec"]["template"]["spec"] for n, d in by_kind("Job").items()}
    return out


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_pass_the_schemas(version):
    docs = manifests()
    assert {d["kind"] for d in docs} == {"Deployment", "Job", "Service", "ConfigMap", "Secret"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_validation_would_catch_a_bad_manifest():
    bad = by_kind("Deployment")["flywheel-api"]
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)
    typo = by_kind("Deployment")["flywheel-worker"]
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSIONS[-1], strict=True)


def test_kubernetes_commands_and_variables_are_real():
    config = by_kind("ConfigMap")["flywheel"]["data"]
    secret = by_kind("Secret")["flywheel"]["stringData"]
    roles = {}
    for where, spec in pod_specs().items():
        for c in containers(spec):
            assert "command" not in c, "the image's ENTRYPOINT (flywheel) runs the args"
            roles[f"{where}/{c['name']}"] = parse_cli(c["args"]).command.name
            assert {e["configMapRef"]["name"] for e in c["envFrom"] if "configMapRef" in e} == {"flywheel"}
            assert {e["secretRef"]["name"] for e in c["envFrom"] if "secretRef" in e} == {"flywheel"}
            env = {**config, **secret, **{e["name"]: e["value"] for e in c.get("env", [])}}
            assert_real_variables(env, f"{where}/{c['name']}")
    assert roles == {
        "Deployment/flywheel-api/wait-for-migrations": "migrate", "Deployment/flywheel-api/api": "serve",
        "Deployment/flywheel-worker/wait-for-migrations": "migrate", "Deployment/flywheel-worker/worker": "worker",
        "Job/flywheel-migrate/migrate": "migrate"}


def test_kubernetes_secret_is_a_template_with_every_secret():
    secret = by_kind("Secret")["flywheel"]["stringData"]
    assert {"DATABASE_URL", "REDIS_URL", "FLYWHEEL_SECRET_KEY", *AWS_CREDENTIALS} <= set(secret)
    assert all("CHANGE-ME" in v for k, v in secret.items() if k != "REDIS_URL"), secret
    assert not set(secret) & set(by_kind("ConfigMap")["flywheel"]["data"])


def test_kubernetes_migrations_run_before_api_and_workers():
    job = by_kind("Job")["flywheel-migrate"]["spec"]["template"]["spec"]
    assert parse_cli(job["containers"][0]["args"]).params == {"check": False}
    for name, deployment in by_kind("Deployment").items():
        init = deployment["spec"]["template"]["spec"]["initContainers"]
        # `migrate --check` exits 1 while migrations are pending: the pod waits for the Job.
        assert [parse_cli(c["args"]).params for c in init] == [{"check": True}], name


def test_kubernetes_pods_are_non_root_read_only_and_bounded():
    for where, spec in pod_specs().items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == IMAGE_UID and pod["fsGroup"] == IMAGE_UID, where
        assert spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{where}/{c['name']} {bound}"
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert "/tmp" in mounts and all("emptyDir" in volumes[n] for n in mounts.values())
        main = spec["containers"][0]
        assert any(m["mountPath"] == "/data" for m in main["volumeMounts"]), f"{where}: no writable /data"
    assert "USER 10001:10001" in (REPO / "Containerfile").read_text()


def test_kubernetes_probes_and_ports_agree_with_the_cli():
    api = by_kind("Deployment")["flywheel-api"]
    pod = api["spec"]["template"]
    c = pod["spec"]["containers"][0]
    params = parse_cli(c["args"]).params
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": params["port"]} and params["host"] == "0.0.0.0"
    assert (c["livenessProbe"]["httpGet"], c["readinessProbe"]["httpGet"]) == (
        {"path": "/healthz", "port": "http"}, {"path": "/readyz", "port": "http"})
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert api["spec"]["replicas"] >= 2
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(params["port"])
    service = by_kind("Service")["flywheel"]["spec"]
    assert service["selector"] == pod["metadata"]["labels"] == api["spec"]["selector"]["matchLabels"]
    assert [p["targetPort"] for p in service["ports"]] == ["http"]

    worker = by_kind("Deployment")["flywheel-worker"]
    wc = worker["spec"]["template"]["spec"]["containers"][0]
    metrics = parse_cli(wc["args"]).params["metrics_port"]
    assert {p["name"]: p["containerPort"] for p in wc["ports"]} == {"metrics": metrics}
    assert wc["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(metrics)
    assert worker["spec"]["replicas"] >= 2
    assert worker["spec"]["selector"]["matchLabels"] == worker["spec"]["template"]["metadata"]["labels"]


# ---------------------------------------------------------------------------
# Grafana and Prometheus: every metric the PromQL names is exported.
# ---------------------------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan"}
# Labels Prometheus itself adds to every scraped series.
_TARGET_LABELS = {"instance", "job"}


def promql_selectors(expr: str) -> dict[str, set[str]]:
    """Metric name -> label names its selectors match on, for every metric an expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    out: dict[str, set[str]] = {}
    for name, labels in re.findall(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr):
        out.setdefault(name, set()).update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", labels))
    bare = re.sub(r"\{[^}]*\}", " ", expr)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    for name in re.findall(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", bare):
        if name.lower() not in _KEYWORDS:
            out.setdefault(name, set())
    return out


def grouping_labels(expr: str) -> set[str]:
    found = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
    return {label.strip() for group in found for label in group.split(",") if label.strip()}


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    out = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for variable in dash["templating"]["list"]:
        if variable["type"] == "query":
            out.append(re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["query"]["query"]).group(1))
    return out


def alert_queries() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def exported(text: str) -> dict[str, set[str]]:
    """Series name -> label names, from the exposition text, suffixes resolved by metric type.

    A family declared with no series yet (a labelled metric nothing observed) still names its
    series (`_bucket`, `_sum`, `_count` of a histogram; `_total` of a counter).
    """
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created", ""), "gauge": ("",), "info": ("_info",)}
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in suffixes.get(family.type, ("",)):
            out.setdefault(family.name + suffix, set())
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


def test_promql_parsing_finds_names_and_labels():
    expr = ('sum by (le, family) (rate(flywheel_scoring_seconds_bucket{instance=~"$instance", a="x{y}"}'
            '[$__rate_interval])) / on (family) group_left max(flywheel_jobs_current) and up > 0.8 * 1e3')
    assert promql_selectors(expr) == {"flywheel_scoring_seconds_bucket": {"instance", "a"},
                                      "flywheel_jobs_current": set(), "up": set()}
    assert grouping_labels(expr) == {"le", "family"}


def test_dashboard_and_alerts_cover_what_the_issue_asks():
    dash = set().union(*(promql_selectors(q) for q in dashboard_queries()))
    assert {"flywheel_events_total", "flywheel_ingest_flush_seconds_bucket", "flywheel_ingest_queue_events",
            "flywheel_ingest_spool_bytes", "flywheel_scoring_seconds_bucket", "flywheel_jobs_current",
            "flywheel_jobs_total"} <= dash
    names = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    assert {"FlywheelSpoolGrowing", "FlywheelIngest503s", "FlywheelJobsFailing"} <= names
    for g in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in g["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]


# PromQL functions and aggregations the files may use (a typo'd one would be read as a metric).
_FUNCTIONS = {"sum", "max", "min", "avg", "count", "rate", "irate", "increase", "deriv", "delta",
              "histogram_quantile", "topk", "clamp_min"}


def test_promql_is_well_formed_and_calls_real_functions():
    for query in dashboard_queries() + alert_queries():
        depth = {"(": 0, "{": 0, "[": 0}
        closing = {")": "(", "}": "{", "]": "["}
        for ch in re.sub(r'"(?:[^"\\]|\\.)*"', '""', query):
            if ch in depth:
                depth[ch] += 1
            elif ch in closing:
                depth[closing[ch]] -= 1
                assert depth[closing[ch]] >= 0, query
        assert set(depth.values()) == {0}, query
        called = set(re.findall(r"\b([a-z_]+)\s*\(", re.sub(r"\b(?:by|without|on|ignoring)\s*\(", "", query)))
        assert called <= _FUNCTIONS, f"{sorted(called - _FUNCTIONS)} in {query!r}"


def test_alert_rules_and_dashboard_are_well_formed():
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "1m")), rule
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and dash["uid"] == "flywheel"
    for p in dash["panels"]:
        for t in p.get("targets", []):
            assert t["refId"] and t["datasource"]["uid"] == "${datasource}", p["title"]


async def test_every_metric_in_the_dashboard_and_alerts_is_exported(client, tenant, worker):
    from ingest_helpers import batch

    # Series appear once something is observed: ingest, run a job, score nothing (declared only).
    assert (await client.post("/v1/events", json=batch(3), headers=tenant.headers)).status_code == 200
    job = await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=tenant.headers)
    assert job.status_code in (200, 201, 202), job.text
    queued = exported_values((await client.get("/metrics")).text, "flywheel_jobs_current")
    assert queued["queued"] >= 1, queued
    await worker()
    text = (await client.get("/metrics")).text
    series = exported(text)
    assert any(s.name == "flywheel_jobs_total" and s.labels == {"name": "example.count_notes", "state": "succeeded"}
               and s.value >= 1 for f in text_string_to_metric_families(text) for s in f.samples)
    paths = {s.labels["path"] for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == "litestar_requests_total"}
    assert "flywheel_made_up_total" not in series
    for where, queries in (("dashboard", dashboard_queries()), ("alerts", alert_queries())):
        for query in queries:
            for name, labels in promql_selectors(query).items():
                assert name in series, f"{where}: {name} is not exported (in {query!r})"
                if series[name]:  # labels are known once a series exists
                    unknown = labels - series[name] - _TARGET_LABELS
                    assert not unknown, f"{where}: {name} has no label {unknown}"
            # A route template that drifted would leave a panel silently empty.
            for path in re.findall(r'path="([^"]+)"', query):
                assert path in paths, f"{where}: no requests recorded for path {path!r} (seen: {sorted(paths)})"
            grouped = grouping_labels(query) - _TARGET_LABELS - {"le"}
            everything = set().union(*(series.get(n, set()) for n in promql_selectors(query)))
            assert grouped <= everything or not everything, f"{where}: grouping by {grouped} in {query!r}"


def exported_values(text: str, name: str) -> dict[str, float]:
    return {s.labels["state"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name}


def test_a_worker_serves_its_metrics(flywheel_settings):
    """`flywheel worker --metrics-port`: the job counters of a process without an API get scraped."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir,
           "FLYWHEEL_QUEUE": f"flywheel-test:{uuid.uuid4().hex[:8]}"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "flywheel"), "worker", "--metrics-port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the worker's metrics never answered"
                time.sleep(0.2)
        assert {"flywheel_jobs_total", "flywheel_job_seconds_bucket"} <= set(exported(text))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
