"""The web client's own bytes, raw and gzip, per module and in total (what a slow phone fetches).

Every module a browser may load (web/**/*.js but the demo page, tests and node_modules), each
gzipped on its own as a server compresses each response. "Up front" is index.js and its static
imports; the rest (the non-English UI strings) load on demand, one locale per user.
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "web"
NOT_SHIPPED = {"demo.js"}
NOT_SHIPPED_DIRS = {"test", "testing", "node_modules", "docs"}
# v1 (commit 2daaffe: notification-client.js, elements.js, socket.js, index.js), measured the
# same way: the budget the client must stay within.
BASELINE_GZIP = 20_250
STATIC_IMPORT = re.compile(r"""^(?:import|export)\s[^;]*?from\s+["'](\.{1,2}/[^"']+)["']""", re.M)


def shipped_modules(web: Path = WEB) -> list[Path]:
    return sorted(
        path
        for path in web.rglob("*.js")
        if path.name not in NOT_SHIPPED
        and not NOT_SHIPPED_DIRS.intersection(path.relative_to(web).parts)
    )


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def up_front(entry: Path) -> set[Path]:
    """`entry` and every module it imports statically (dynamic import() is left out)."""
    seen: set[Path] = set()
    todo = [entry.resolve()]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for target in STATIC_IMPORT.findall(module.read_text(encoding="utf-8")):
            todo.append((module.parent / target).resolve())
    return seen


def measure(web: Path = WEB) -> list[tuple[str, int, int, bool]]:
    """(module, raw bytes, gzip bytes, loaded up front) for every shipped module."""
    eager = up_front(web / "index.js")
    rows = []
    for path in shipped_modules(web):
        data = path.read_bytes()
        rows.append((path.relative_to(web).as_posix(), len(data), gzip_size(data), path in eager))
    return rows


def main(tiny: bool = False) -> None:
    print("\n== Web client size (web/, each module gzipped on its own, level 9) ==")
    rows = measure()
    eager = [row for row in rows if row[3]]
    if not tiny:
        print(f"  {'module':<34} {'raw':>8} {'gzip':>7}")
        for name, raw, packed, loaded in rows:
            print(f"  {name:<34} {raw:>8,} {packed:>7,}{'' if loaded else '  (on demand)'}")
    total_raw, total_gzip = sum(r[1] for r in rows), sum(r[2] for r in rows)
    eager_raw, eager_gzip = sum(r[1] for r in eager), sum(r[2] for r in eager)
    per_locale = max((r[2] for r in rows if r[0].startswith("elements/locales/")), default=0)
    print(f"total, every module: {total_raw:>8,} B raw {total_gzip:>7,} B gzip ({len(rows)})")
    print(f"loaded up front:     {eager_raw:>8,} B raw {eager_gzip:>7,} B gzip ({len(eager)})")
    print(f"a page in one non-English language: +{per_locale:,} B gzip at most")
    verdict = "within" if eager_gzip + per_locale <= BASELINE_GZIP else "OVER"
    print(
        f"v1 baseline {BASELINE_GZIP:,} B gzip; up front + one locale "
        f"{eager_gzip + per_locale:,} B: {verdict} budget"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="totals only")
    main(tiny=parser.parse_args().tiny)
