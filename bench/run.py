"""Run every benchmark side by side and write BENCHMARKS.md.

Usage: ``python bench/run.py [--repeats N] [--output FILE]`` (``make bench``).
A missed target is written in the report; it does not fail the run, because
timings on a shared machine are noisy.
"""

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
# After bench/, whose images.py must win over the tests' images.py.
sys.path.append(str(BENCH_DIR.parent / "test"))

import images  # noqa: E402 (the benchmark modules live beside this script)
import monitoring  # noqa: E402
import replace_image  # noqa: E402
from harness.postgres import postgres_bindir  # noqa: E402 (the harness lives under test/)

CASES = (replace_image, images, monitoring)


def program_version(command):
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except OSError:
        return "not installed"
    text = (output.stdout or output.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def postgres_version():
    """Return the version line of the PostgreSQL server that the harness runs."""
    try:
        bindir = postgres_bindir()
    except RuntimeError:
        return "PostgreSQL not installed"
    return program_version([str(bindir / "postgres"), "--version"])


def machine_description():
    return (
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" CubicWeb {version('cubicweb')}, cubicweb-web {version('cubicweb-web')},"
        f" cubicweb-file {version('cubicweb-file')}, SQLite {sqlite3.sqlite_version},"
        f" {postgres_version()},"
        f" {program_version(['/usr/sbin/squid', '-v'])}, {program_version(['wrk', '-v'])}."
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (at least 3)")
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"), help="report file")
    options = parser.parse_args()
    if options.repeats < 3:
        parser.error(f"--repeats must be at least 3, not {options.repeats}")

    sections = [case.section(options.repeats) for case in CASES]
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Command: `make bench` ({options.repeats} runs per case). {machine_description()}",
            "",
            "Each verdict rests on the medians of these runs, on a machine shared with"
            " other work. The min and max show how far the runs spread: a median within"
            " about 10% of its target can change verdict from one run to the next, so"
            " compare several reports before reading much into such a case.",
            "",
            *sections,
        ]
    )
    print(text)
    options.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
