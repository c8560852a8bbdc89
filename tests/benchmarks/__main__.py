"""Run the memory benchmarks and print their table.

    python -m tests.benchmarks [--markdown PATH] [pytest options...]

Same as ``pytest -m benchmark -s tests/benchmarks``; ``--markdown`` also writes the
table to PATH (it sets ``BENCH_MARKDOWN``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--markdown", metavar="PATH", help="also write the table as Markdown")
    args, rest = parser.parse_known_args(argv)
    if args.markdown:
        os.environ["BENCH_MARKDOWN"] = str(Path(args.markdown).resolve())
    return int(
        pytest.main(
            [
                "-m",
                "benchmark",
                "-s",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(HERE.parent.parent),
                str(HERE),
                *rest,
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
