"""`make bench`: every benchmark section in turn."""

from __future__ import annotations

from pathlib import Path

from benchmarks import broadcast, calls, coldstart, package, webclient_size

HERE = Path(__file__).resolve().parent


def main() -> None:
    package.main()
    calls.main()
    coldstart.main()
    broadcast.main()
    webclient_size.main()
    # benchmarks/e2e.py is written separately; run it only once it exists.
    if (HERE / "e2e.py").is_file():
        from benchmarks import e2e

        e2e.main()


if __name__ == "__main__":
    main()
