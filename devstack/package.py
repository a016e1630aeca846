"""The app packaged exactly as `make package` builds it (infra/package.py: `chalice package`
merged with infra/resources.json, then finished): one function for the tests and benchmarks
that need the deployment zip and its SAM template."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack.runtime import PROJECT_ROOT

PACKAGER = "infra/package.py"


def package_app(out: Path, *, stage: str = "prod") -> Path:
    """Package into `out` (sam.json, deployment.zip); returns `out`. Raises with chalice's
    output when packaging fails."""
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [sys.executable, PACKAGER, "--stage", stage, str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
        },
    )
    if result.returncode != 0:
        raise RuntimeError(f"packaging failed:\n{result.stdout}{result.stderr}")
    return out
