"""The Lambda deployment package: `chalice package` into a temporary folder, its zip measured."""

from __future__ import annotations

import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from devstack.package import package_app

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MB = 10


def main(*, smoke: bool = False) -> None:
    """Packaging has no smaller configuration: `smoke` runs it as is."""
    print("\n== Lambda package (chalice package --merge-template infra/resources.json) ==")
    with tempfile.TemporaryDirectory() as out:
        package_app(Path(out))
        archive = Path(out) / "deployment.zip"
        with zipfile.ZipFile(archive) as bundle:
            entries = bundle.infolist()
        size = archive.stat().st_size
        unpacked = sum(entry.file_size for entry in entries)
        by_top = Counter()
        for entry in entries:
            by_top[entry.filename.split("/", 1)[0]] += entry.compress_size
    print(
        f"deployment.zip {size / 1e6:.2f} MB ({size / (LIMIT_MB * 1e6):.0%} of {LIMIT_MB} MB); "
        f"{unpacked / 1e6:.2f} MB unpacked in {len(entries)} files"
    )
    print("largest parts (compressed):")
    for name, compressed in by_top.most_common(8):
        print(f"  {name:<32} {compressed / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
