"""The web client as an npm package: what `npm pack` puts in the tarball, and its size.

Runs the real `npm pack --dry-run --json` in web/, so the `files` list, `exports` and `types`
of web/package.json are checked as npm reads them, not as this test would guess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from benchmarks.webclient_size import BLOCK_COMMENT, DYNAMIC_IMPORT, STATIC_IMPORT

WEB = Path(__file__).resolve().parents[1] / "web"
# The packed tarball (gzip): 52,442 B with the README when first packed; room to grow a little.
MAX_TARBALL_BYTES = 64 * 1024
NOT_IN_PACKAGE = ("demo/", "test/", "testing/", "docs/", "examples/", "node_modules/")


@cache
def _pack() -> dict[str, Any]:
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("CI"):
            pytest.fail("npm is missing")
        pytest.skip("npm is not installed")
    result = subprocess.run(
        [npm, "pack", "--dry-run", "--json", "--ignore-scripts"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (packed,) = json.loads(result.stdout)
    return packed


def _manifest() -> dict[str, Any]:
    return json.loads((WEB / "package.json").read_text(encoding="utf-8"))


def _reachable(entries: list[str]) -> set[str]:
    """Every module the entries import, statically or on demand (`${x}` in a path: any)."""
    seen: set[str] = set()
    todo = [(WEB / entry).resolve() for entry in entries]
    while todo:
        module = todo.pop()
        relative = module.relative_to(WEB).as_posix()
        if relative in seen:
            continue
        seen.add(relative)
        source = BLOCK_COMMENT.sub("", module.read_text(encoding="utf-8"))
        for target in STATIC_IMPORT.findall(source) + DYNAMIC_IMPORT.findall(source):
            pattern = re.sub(r"\$\{[^}]*\}", "*", target)
            matches = sorted(module.parent.glob(pattern))
            assert matches, f"{relative} imports {target}, which is missing"
            todo.extend(match.resolve() for match in matches)
    return seen


def test_the_manifest_describes_a_publishable_package() -> None:
    manifest = _manifest()
    assert manifest.get("private") is not True
    assert re.fullmatch(r"@[a-z0-9-]+/[a-z0-9-]+", manifest["name"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert manifest["type"] == "module"
    assert manifest["types"] == "./index.d.ts"
    assert manifest["exports"]["."] == {"types": "./index.d.ts", "default": "./index.js"}
    assert manifest.get("dependencies", {}) == {}, "the library has no runtime dependency"


def test_the_tarball_holds_the_library_and_nothing_else() -> None:
    packed = _pack()
    files = {entry["path"] for entry in packed["files"]}
    assert not [path for path in files if path.startswith(NOT_IN_PACKAGE)], sorted(files)
    others = {path for path in files if not path.endswith(".js")}
    assert others == {"README.md", "package.json", "index.d.ts"}, others
    # Every module the entry points reach, up front or on demand, is in the tarball...
    exports = _manifest()["exports"].values()
    exported = [target["default"] if isinstance(target, dict) else target for target in exports]
    entries = [path.removeprefix("./") for path in exported if path.endswith(".js")]
    reachable = _reachable(entries)
    assert reachable <= files, sorted(reachable - files)
    # ...and every other file is a module of the library's own folders (no demo, fake, test).
    for path in files - reachable - others:
        assert path == "sw.js" or path.startswith(("client/", "elements/")), path
    assert {"index.js", "elements.js", "notification-client.js", "socket.js"} <= files
    assert {f"elements/locales/{code}.js" for code in ("es", "fr", "ar", "zh-Hans", "ht")} <= files


def test_the_tarball_is_small() -> None:
    packed = _pack()
    print(f"npm pack: {packed['size']} B packed, {packed['unpackedSize']} B unpacked")
    assert 0 < packed["size"] <= MAX_TARBALL_BYTES, packed["size"]
    assert packed["entryCount"] == len(packed["files"])
