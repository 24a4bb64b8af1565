"""Starting the local Hudi session: first run (download from Maven Central into an empty
cache), a cached start through Ivy resolution, and a cached start from the remembered jar
list (``spark.jars``, what glue/local_spark.py does once a resolution succeeded).

Each start is a fresh process timing ``glue.local_spark.local_spark(..., "hudi", ...)``
to a usable session (one tiny query), with ``MYSTORE_IVY_DIR`` pointing at a new, empty
folder for the whole bench.

Run: uv run --locked python bench/bench_hudi_download.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

START = """
import time
started = time.monotonic()
from glue.local_spark import local_spark
spark = local_spark("bench", "download", "hudi", "0.15", None)
spark.range(1).count()
print(f"SESSION_SECONDS {time.monotonic() - started:.2f}")
spark.stop()
"""


def start(env: dict[str, str]) -> tuple[float, float, str]:
    """(session seconds inside the process, process wall seconds, stdout)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", START], cwd=REPO, env=env, capture_output=True, text=True
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"session start failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("SESSION_SECONDS"))
    return float(line.split()[1]), wall, proc.stdout


def main() -> None:
    ivy = Path(tempfile.mkdtemp(prefix="bench-ivy-"))
    env = {
        **os.environ,
        "MYSTORE_IVY_DIR": str(ivy),
        "PYTHONPATH": str(REPO),
    }
    env.pop("MYSTORE_HUDI_BUNDLE_JAR", None)
    print(f"{os.cpu_count()} cpu(s), load average {os.getloadavg()[0]:.1f}; ivy dir {ivy}")
    session, wall, out = start(env)
    downloaded = sum(p.stat().st_size for p in (ivy / "cache").rglob("*.jar"))
    said = [x for x in out.splitlines() if "downloading" in x]
    print(
        f"first run (empty cache, download {downloaded / 1e6:.0f} MB): session {session:.1f} s, "
        f"process {wall:.1f} s"
    )
    print(f"  printed: {said[0] if said else '(no download line!)'}")
    jar_list = ivy / "mystore-hudi-0.15-jars.json"
    print(f"  remembered jar list: {jar_list.exists()}")
    session, wall, _ = start(env)
    print(f"cached, from the jar list (spark.jars): session {session:.1f} s, process {wall:.1f} s")
    jar_list.unlink()
    session, wall, _ = start(env)
    print(
        f"cached, Ivy resolution (spark.jars.packages): session {session:.1f} s, process {wall:.1f} s"
    )
    session, wall, _ = start(env)
    print(f"cached, from the jar list again: session {session:.1f} s, process {wall:.1f} s")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
