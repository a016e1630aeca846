"""The Lambda deployment package: `chalice package` into a temporary folder, its zip measured.

`BENCH_PACKAGE=DIR` measures the package already built in DIR (deployment.zip, as
`make package` or devstack.package builds it) instead: the tests package once per run and hand
it to this benchmark and to benchmarks/coldstart.py.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from devstack.package import package_app

ROOT = Path(__file__).resolve().parent.parent
# Lambda's quotas: a zip uploaded directly (not through S3), and the package unzipped.
ZIPPED_LIMIT_MB = 50
UNZIPPED_LIMIT_MB = 250
PREBUILT = "BENCH_PACKAGE"


def prebuilt() -> Path | None:
    """The folder of an already built package, if one was handed over in $BENCH_PACKAGE."""
    folder = os.environ.get(PREBUILT)
    return Path(folder) if folder else None


def main(*, smoke: bool = False) -> None:
    """Packaging has no smaller configuration: `smoke` runs it as is."""
    print("\n== Lambda package (chalice package --merge-template infra/resources.json) ==")
    with tempfile.TemporaryDirectory() as out:
        archive = (prebuilt() or package_app(Path(out))) / "deployment.zip"
        with zipfile.ZipFile(archive) as bundle:
            entries = bundle.infolist()
        size = archive.stat().st_size
        unpacked = sum(entry.file_size for entry in entries)
        by_top = Counter()
        for entry in entries:
            by_top[entry.filename.split("/", 1)[0]] += entry.compress_size
    print(
        f"deployment.zip {size / 1e6:.2f} MB ({size / (ZIPPED_LIMIT_MB * 1e6):.0%} of Lambda's "
        f"{ZIPPED_LIMIT_MB} MB for a direct upload); {unpacked / 1e6:.2f} MB unpacked "
        f"({unpacked / (UNZIPPED_LIMIT_MB * 1e6):.0%} of {UNZIPPED_LIMIT_MB} MB) in "
        f"{len(entries)} files"
    )
    print("largest parts (compressed):")
    for name, compressed in by_top.most_common(8):
        print(f"  {name:<32} {compressed / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
