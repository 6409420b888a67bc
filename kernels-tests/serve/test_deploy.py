"""deploy/ cannot run here (no Docker, no Kubernetes); what can be checked
is: the YAML parses into the KServe objects it claims, every flag the
runtime and the InferenceService pass is one `resincept serve` accepts,
the probes hit the server's health routes (and those answer), and the
Dockerfile builds with the command docs/SERVING.md gives."""

import re
import subprocess

import yaml

from conftest import BIN, ROOT, env, http_get

DEPLOY = ROOT / "deploy"
SERVING = (ROOT / "docs" / "SERVING.md").read_text()


def serve_flags():
    out = subprocess.run([str(BIN), "serve", "--help"], capture_output=True, env=env(), check=True)
    return set(re.findall(r"--[a-z][a-z0-9-]*", out.stdout.decode()))


def flags_of(args):
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def docs():
    out = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for d in yaml.safe_load_all(path.read_text()):
            out[(d["kind"], d["metadata"]["name"])] = d
    return out


def test_runtimes_and_inference_service(server):
    d = docs()
    known = serve_flags()
    protocols = {}
    for (kind, name), doc in d.items():
        if kind != "ClusterServingRuntime":
            continue
        assert doc["apiVersion"] == "serving.kserve.io/v1alpha1"
        (c,) = doc["spec"]["containers"]
        assert c["args"][0] == "serve"
        assert flags_of(c["args"]) <= known, flags_of(c["args"]) - known
        assert "--host=0.0.0.0" in c["args"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert len(c["ports"]) == 1, "Knative routes one port per service"
        protocols[name] = (doc["spec"]["protocolVersions"], c["ports"][0])
    assert protocols["resincept-http"][0] == ["v2"]
    assert protocols["resincept-http"][1]["containerPort"] == 8080
    assert protocols["resincept-grpc"][0] == ["grpc-v2"]
    assert protocols["resincept-grpc"][1] == {"name": "h2c", "containerPort": 8081, "protocol": "TCP"}
    http_rt = d[("ClusterServingRuntime", "resincept-http")]["spec"]
    assert http_rt["annotations"]["prometheus.kserve.io/path"] == "/metrics"

    isvc = d[("InferenceService", "resnet50")]
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/enable-prometheus-scraping"] == "true"
    pred = isvc["spec"]["predictor"]
    assert pred["scaleMetric"] == "concurrency" and pred["scaleTarget"] >= 1
    model = pred["model"]
    assert model["runtime"] in protocols
    assert flags_of(model["args"]) <= known, flags_of(model["args"]) - known
    assert any(a.startswith("--weights=/mnt/models/") for a in model["args"])
    # The probes' routes answer on a real server.
    assert http_get(server.http_port, "/v2/health/live")[0] == 200
    assert http_get(server.http_port, "/v2/health/ready")[0] == 200
    assert http_get(server.http_port, "/metrics")[0] == 200


def test_dockerfile_builds_as_the_docs_say():
    text = (DEPLOY / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (cargo .*)$", text, re.M)
    assert runs == ["cargo build --release --bins"], runs
    assert f"({runs[0]})" in SERVING or runs[0] in SERVING
    build = re.search(r"^#\s+(docker build .*)$", text, re.M).group(1)
    assert build in SERVING, build
    binary = re.search(r"^COPY --from=build \S+ (\S+)$", text, re.M).group(1)
    assert f'ENTRYPOINT ["{binary}"]' in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M).group(1)
    args = yaml.safe_load(cmd)
    assert args[0] == "serve" and flags_of(args) <= serve_flags()
    assert "libvulkan1" in text and "graphics" in text
