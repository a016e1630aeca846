"""The web client's own bytes, raw and gzip, per module and in total (what a slow phone fetches).

Every module a browser may load (web/**/*.js but the demo page, tests and node_modules), each
gzipped on its own as a server compresses each response. "Up front" is what the entry points
the README tells integrators to load (index.js, elements.js) reach through static imports: a
page pays for it before anything shows. The rest is "on demand": fetched by a dynamic import()
on first use (a feature's first use, one locale per user), or only when imported directly
(socket.js, the seed's API).
"""

from __future__ import annotations

import argparse
import gzip
import posixpath
import re
import subprocess
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "web"
ENTRY_POINTS = ("index.js", "elements.js")
NOT_SHIPPED = {"demo.js"}
NOT_SHIPPED_DIRS = {"test", "testing", "node_modules", "docs", "demo", "examples"}
# v1 (notification-client.js, elements.js, socket.js, index.js), measured the same way from
# git history: what a page may load up front. RECORDED_GZIP is that figure, for a checkout
# without the history (a shallow clone).
BASELINE_COMMIT = "2daaffe"
RECORDED_GZIP = 20_250
STATIC_IMPORT = re.compile(r"""^(?:import|export)\s[^;]*?from\s+["'](\.{1,2}/[^"']+)["']""", re.M)
DYNAMIC_IMPORT = re.compile(r"""\bimport\(\s*["'`](\.{1,2}/[^"'`]+)["'`]""")
BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)  # JSDoc types say import("./x.js") too


def shipped_modules(web: Path = WEB) -> list[Path]:
    return sorted(
        path
        for path in web.rglob("*.js")
        if path.name not in NOT_SHIPPED
        and not NOT_SHIPPED_DIRS.intersection(path.relative_to(web).parts)
    )


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def up_front(*entries: Path) -> set[Path]:
    """The entries and every module they import statically (dynamic import() is left out)."""
    seen: set[Path] = set()
    todo = [entry.resolve() for entry in entries]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for target in STATIC_IMPORT.findall(module.read_text(encoding="utf-8")):
            todo.append((module.parent / target).resolve())
    return seen


def loaders(web: Path = WEB) -> dict[Path, str]:
    """Module -> the module whose dynamic import() fetches it (`${…}` in a path matches any)."""
    found: dict[Path, str] = {}
    for module in shipped_modules(web):
        code = BLOCK_COMMENT.sub("", module.read_text(encoding="utf-8"))
        for target in DYNAMIC_IMPORT.findall(code):
            pattern = (module.parent / target).resolve().as_posix()
            parts = [re.escape(part) for part in re.split(r"\$\{[^}]*\}", pattern)]
            matcher = re.compile("[^/]+".join(parts) + r"\Z")
            for candidate in shipped_modules(web):
                if matcher.match(candidate.resolve().as_posix()):
                    found.setdefault(candidate.resolve(), module.relative_to(web).as_posix())
    return found


def measure(web: Path = WEB) -> list[tuple[str, int, int, bool]]:
    """(module, raw bytes, gzip bytes, loaded up front) for every shipped module."""
    eager = up_front(*(web / entry for entry in ENTRY_POINTS))
    rows = []
    for path in shipped_modules(web):
        data = path.read_bytes()
        rows.append((path.relative_to(web).as_posix(), len(data), gzip_size(data), path in eager))
    return rows


def baseline_gzip(commit: str = BASELINE_COMMIT) -> tuple[int, str]:
    """v1's up-front gzip bytes, measured as `measure` does from the files at `commit`; the
    recorded figure when git or the commit is not there."""
    root = WEB.parent

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{commit}:{path}"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    try:
        seen: dict[str, str] = {}
        todo = [f"web/{entry}" for entry in ENTRY_POINTS]
        while todo:
            path = todo.pop()
            if path not in seen:
                seen[path] = show(path)
                for target in STATIC_IMPORT.findall(seen[path]):
                    todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(path), target)))
    except (OSError, subprocess.CalledProcessError):
        return RECORDED_GZIP, f"recorded for v1 ({commit}; no git history here)"
    total = sum(gzip_size(code.encode("utf-8")) for code in seen.values())
    return total, f"measured now from git {commit}: {', '.join(sorted(seen))}"


def main(tiny: bool = False) -> None:
    print("\n== Web client size (web/, each module gzipped on its own, level 9) ==")
    rows = measure()
    eager = [row for row in rows if row[3]]
    lazy = [row for row in rows if not row[3]]
    fetched_by = {path.relative_to(WEB).as_posix(): by for path, by in loaders().items()}
    if not tiny:
        for title, group in (("up front", eager), ("on demand", lazy)):
            print(f"  {title + ':':<34} {'raw':>8} {'gzip':>7}")
            for name, raw, packed, _ in group:
                how = ""
                if title == "on demand":
                    by = fetched_by.get(name)
                    how = f"  import() in {by}" if by else "  only when imported directly"
                print(f"    {name:<32} {raw:>8,} {packed:>7,}{how}")
    for title, group in (("up front", eager), ("on demand", lazy), ("every module", rows)):
        raw, packed = sum(r[1] for r in group), sum(r[2] for r in group)
        print(f"{title + ':':<14} {raw:>8,} B raw {packed:>7,} B gzip ({len(group)} modules)")
    eager_gzip = sum(r[2] for r in eager)
    per_locale = max((r[2] for r in rows if r[0].startswith("elements/locales/")), default=0)
    baseline, source = baseline_gzip()
    verdict = "within" if eager_gzip <= baseline else "OVER"
    print(
        f"v1 baseline {baseline:,} B gzip ({source}); up front {eager_gzip:,} B = "
        f"{eager_gzip / baseline:.2f}x: {verdict} budget"
    )
    print(f"a page in one non-English language: +{per_locale:,} B gzip at most, on demand")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="totals only")
    main(tiny=parser.parse_args().tiny)
