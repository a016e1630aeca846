"""`make bench`: every benchmark section in turn. `--smoke`: each in a tiny configuration,
to check that it runs (tests/test_benchmarks.py); its figures mean nothing."""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Run order of `make bench`; a module not listed here runs after these.
ORDER = ("package", "calls", "coldstart", "aws_model", "e2e")
# What the benchmarks share, not a benchmark itself.
SHARED = frozenset({"harness"})


def modules() -> list[str]:
    """Every benchmark module of this package, in run order."""
    found = {
        info.name
        for info in pkgutil.iter_modules([str(HERE)])
        if not info.name.startswith("_") and info.name not in SHARED
    }
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def entry_point(name: str) -> Callable[..., Any]:
    return importlib.import_module(f"benchmarks.{name}").main


def run(name: str, *, smoke: bool = False) -> Any:
    """Run one benchmark's `main`; `smoke` is passed to those that take it (as `smoke` or
    `tiny`)."""
    main = entry_point(name)
    parameters = inspect.signature(main).parameters
    for flag in ("smoke", "tiny"):
        if smoke and flag in parameters:
            return main(**{flag: True})
    return main()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny configurations, figures moot")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args(argv)
    for name in args.names or modules():
        run(name, smoke=args.smoke)


if __name__ == "__main__":
    main()
