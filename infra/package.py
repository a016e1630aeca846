"""`make package`: `chalice package` merged with infra/resources.json, then finished here.

Chalice owns part of the template and the zip; what it cannot express is done here, each step
derived from what Chalice generated rather than copied by hand:

- The WebSocket deployment's logical id carries a hash of the API's routes and integrations.
  Chalice emits a fixed `WebsocketAPIDeployment` with no changing property, so CloudFormation
  never redeploys it and route changes never reach the live stage; a new logical id makes
  CloudFormation create a fresh deployment (a snapshot of the current routes), point the
  stage at it and delete the old one, as SAM does for REST APIs.
- The fan-out queue's visibility timeout is 6 x the worker's timeout (AWS's advice for SQS
  event sources), so a batch is never redelivered while a worker still holds it.
- Routes for tests (`/api/test/...`, answered only in stages `local` and `dev`) are left out of
  every other stage's REST API, so a production API neither deploys nor documents them.
- The template is written compact (no indentation).
- The zip gets precompiled bytecode for Python 3.13 (unchecked-hash .pyc: Lambda's code
  directory is read-only, so without them every cold start compiles every module; hash-based
  so the zip's 2-second timestamps cannot invalidate them) and loses files nothing imports
  (the Powertools Swagger UI bundle, type stubs, C headers).
- The zip gets botocore's endpoint data cut to the services the app calls
  (`chalicelib/endpoints.json`, see chalicelib.wiring.TrimmedEndpoints): every client made on a
  cold start reads it instead of botocore's whole 1.2 MB file. Likewise botocore's DynamoDB model
  cut to the operations the app calls (`chalicelib/sdk_data/`, see chalicelib.wiring.SDK_DATA).

Usage: python infra/package.py [--stage prod] OUTDIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import py_compile
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = "WebsocketAPIDeployment"
VISIBILITY_PER_TIMEOUT = 6
UNUSED_SUFFIXES = (".pyi", ".h")
# Where app.py keeps its routes for tests (chalicelib.rest.Access.LOCAL), and the stages that
# serve them.
TEST_ROUTE_PREFIX = "/api/test/"
TEST_STAGES = frozenset({"local", "dev"})
ENDPOINTS_ENTRY = "chalicelib/endpoints.json"
SDK_DATA_ENTRY = "chalicelib/sdk_data"


def chalice_package(stage: str, out: Path) -> None:
    chalice = Path(sys.executable).parent / "chalice"
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    subprocess.run(
        [chalice, "package", "--stage", stage, "--merge-template", "infra/resources.json", out],
        cwd=ROOT,
        check=True,
        env=env,
    )


def routes_digest(template: dict[str, Any]) -> str:
    """A hash of everything a WebSocket deployment snapshots: the API, routes, integrations."""
    kinds = {
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::RouteResponse",
    }
    snapshot = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource.get("Type") in kinds
    }
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def rename_references(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        if node.get("Ref") == old and len(node) == 1:
            return {"Ref": new}
        return {key: rename_references(value, old, new) for key, value in node.items()}
    if isinstance(node, list):
        return [new if item == old else rename_references(item, old, new) for item in node]
    return node


def redeploy_on_route_changes(template: dict[str, Any]) -> str:
    digest = routes_digest(template)
    resources = template["Resources"]
    name = f"{DEPLOYMENT}{digest}"
    deployment = resources.pop(DEPLOYMENT)
    deployment["Properties"]["Description"] = f"routes sha256:{digest}"
    resources[name] = deployment
    template["Resources"] = rename_references(resources, DEPLOYMENT, name)
    return name


def derive_visibility_timeout(template: dict[str, Any]) -> int:
    resources = template["Resources"]
    timeout = resources["FanoutWorker"]["Properties"]["Timeout"]
    visibility = VISIBILITY_PER_TIMEOUT * timeout
    resources["FanoutQueue"]["Properties"]["VisibilityTimeout"] = visibility
    return visibility


def drop_test_routes(template: dict[str, Any], stage: str) -> list[str]:
    """Leave the test routes out of the REST API's definition outside the test stages."""
    if stage in TEST_STAGES:
        return []
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    dropped = [path for path in paths if path.startswith(TEST_ROUTE_PREFIX)]
    for path in dropped:
        del paths[path]
    return dropped


def finish_template(path: Path, stage: str = "prod") -> dict[str, Any]:
    template = json.loads(path.read_text())
    drop_test_routes(template, stage)
    redeploy_on_route_changes(template)
    derive_visibility_timeout(template)
    path.write_text(json.dumps(template, separators=(",", ":")))
    return template


def trimmed_endpoints(data: dict[str, Any], prefixes: frozenset[str]) -> dict[str, Any]:
    """botocore's endpoint data with only the services of `prefixes` (every partition, region
    and default kept)."""
    return {
        **data,
        "partitions": [
            {
                **partition,
                "services": {
                    name: service
                    for name, service in partition["services"].items()
                    if name in prefixes
                },
            }
            for partition in data["partitions"]
        ],
    }


def cut_service_model(model: dict[str, Any], operations: frozenset[str]) -> dict[str, Any]:
    """A botocore service model with only `operations` and the shapes they reach (their input,
    output and errors, and every member of those): what a client needs to make those calls."""
    kept: set[str] = set()
    waiting = [
        shape["shape"]
        for name in operations
        for shape in (
            model["operations"][name].get("input"),
            model["operations"][name].get("output"),
            *model["operations"][name].get("errors", ()),
        )
        if shape is not None
    ]
    while waiting:
        name = waiting.pop()
        if name in kept:
            continue
        kept.add(name)
        shape = model["shapes"][name]
        waiting += [shape[part]["shape"] for part in ("member", "key", "value") if part in shape]
        waiting += [member["shape"] for member in shape.get("members", {}).values()]
    return {
        **model,
        "operations": {name: op for name, op in model["operations"].items() if name in operations},
        "shapes": {name: shape for name, shape in model["shapes"].items() if name in kept},
    }


def endpoints_json() -> bytes:
    """botocore's endpoint data (this interpreter's botocore, as Lambda's runtime ships it), cut
    to the services the app calls."""
    sys.path.insert(0, str(ROOT))
    from botocore.loaders import create_loader

    from chalicelib.wiring import ENDPOINT_PREFIXES

    loader = create_loader()
    data, where = loader.load_data_with_path("endpoints")
    if not loader.is_builtin_path(where):
        raise SystemExit(f"botocore's endpoint data is overridden by {where}: package without it")
    return json.dumps(trimmed_endpoints(data, ENDPOINT_PREFIXES), separators=(",", ":")).encode()


def sdk_models() -> dict[str, bytes]:
    """botocore's DynamoDB model (this interpreter's botocore), cut to the operations the app
    calls, by its path in the zip (botocore's layout under SDK_DATA_ENTRY)."""
    sys.path.insert(0, str(ROOT))
    from botocore.loaders import create_loader

    from chalicelib.wiring import DYNAMODB_OPERATIONS

    loader = create_loader()
    version = loader.determine_latest_version("dynamodb", "service-2")
    model, where = loader.load_data_with_path(f"dynamodb/{version}/service-2")
    if not loader.is_builtin_path(where):
        raise SystemExit(f"botocore's DynamoDB model is overridden by {where}: package without it")
    cut = cut_service_model(model, DYNAMODB_OPERATIONS)
    entry = f"{SDK_DATA_ENTRY}/dynamodb/{version}/service-2.json"
    return {entry: json.dumps(cut, separators=(",", ":")).encode()}


def finish_zip(path: Path) -> None:
    """Drop unused files, add a .pyc beside every .py (in __pycache__, as CPython looks) and
    the endpoint data and DynamoDB model the app's clients read."""
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        finished = workdir / "finished.zip"
        with (
            zipfile.ZipFile(path) as source,
            zipfile.ZipFile(finished, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
        ):
            for info in source.infolist():
                name = info.filename
                if name.endswith(UNUSED_SUFFIXES) or "__pycache__/" in name:
                    # type stubs, C headers, stale bytecode from the working tree
                    continue
                data = source.read(info)
                target.writestr(info, data)
                if name.endswith(".py"):
                    compiled = _compile(workdir, name, data)
                    if compiled is not None:
                        target.writestr(_pyc_info(info), compiled)
            for entry, data in {ENDPOINTS_ENTRY: endpoints_json(), **sdk_models()}.items():
                added = zipfile.ZipInfo(entry, date_time=time.localtime()[:6])
                added.external_attr = 0o644 << 16
                added.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(added, data)
        finished.replace(path)


def _pyc_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    directory, _, filename = info.filename.rpartition("/")
    stem = filename.removesuffix(".py")
    cache_tag = sys.implementation.cache_tag
    name = f"{directory}/__pycache__/{stem}.{cache_tag}.pyc".lstrip("/")
    pyc = zipfile.ZipInfo(name, date_time=info.date_time)
    pyc.external_attr = info.external_attr
    pyc.compress_type = zipfile.ZIP_DEFLATED
    return pyc


def _compile(workdir: Path, name: str, data: bytes) -> bytes | None:
    source = workdir / "src" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data)
    compiled = workdir / "out.pyc"
    try:
        py_compile.compile(
            str(source),
            cfile=str(compiled),
            dfile=f"/var/task/{name}",
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError as exc:
        # Not valid Python 3.13 (a file for another version): it could not be imported anyway.
        print(f"not compiled: {name}: {exc.exc_type_name}", file=sys.stderr)
        return None
    return compiled.read_bytes()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("out", type=Path)
    arguments = parser.parse_args(argv)
    if sys.version_info[:2] != (3, 13):
        raise SystemExit("Package with Python 3.13: the .pyc files must match Lambda's python3.13")
    chalice_package(arguments.stage, arguments.out)
    finish_template(arguments.out / "sam.json", arguments.stage)
    finish_zip(arguments.out / "deployment.zip")


if __name__ == "__main__":
    main()
