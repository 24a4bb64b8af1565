"""A cold local Hudi driver with and without a class-data-sharing archive (JDK AppCDS).

Measures the lead that docs/performance.md (the ninth round) records and the product does not
use yet: how much of a fresh driver JVM's start and first Hudi upsert is class loading
that an archive of the classes an earlier run loaded would save.

Each run is a fresh process doing what a cold warm-driver does first: start the local Hudi
session (``glue.local_spark.local_spark``, the Hudi jars from the Ivy cache), then upsert a
small table twice. The archive is made once, in one of two ways, and then mapped by the
``archive`` runs with ``-XX:SharedArchiveFile``:

- ``--recording dynamic`` (the default): a run with ``-XX:ArchiveClassesAtExit``; the JVM
  writes the archive when it exits, after the Python process (the bench waits for the
  JVM's process group to be gone);
- ``--recording static``: a run with ``-XX:DumpLoadedClassList`` (the JVM writes the list
  as it loads classes, nothing at exit), then ``java -Xshare:dump`` from that list with the
  same classpath the Spark launcher gave (``SPARK_PRINT_LAUNCH_COMMAND``): a separate
  process whose exit code says whether the archive is whole.

Plain and archive runs alternate, so a machine that gets busier does not favour one side.
Everything goes under a temp dir, removed after.

Run: uv run --locked python bench/bench_spark_cds.py [--runs 3] [--rows 300]
     [--recording dynamic|static]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from glue.local_spark import DEFAULT_JAVA_OPTIONS, JAVA_OPTIONS_ENV  # noqa: E402

CHILD = """
import json, sys, time
started = time.monotonic()
from glue.local_spark import local_spark
spark = local_spark("bench", "cds", "hudi", "0.15", None)
session = time.monotonic()
path, rows = sys.argv[1], int(sys.argv[2])
frame = spark.range(rows).selectExpr(
    "id", "cast(id % 7 as string) as part", "current_timestamp() as ts"
)
options = {
    "hoodie.table.name": "cds",
    "hoodie.datasource.write.recordkey.field": "id",
    "hoodie.datasource.write.precombine.field": "ts",
    "hoodie.datasource.write.partitionpath.field": "part",
    "hoodie.datasource.write.operation": "upsert",
}
times = [session - started]
for _ in range(2):
    began = time.monotonic()
    frame.write.format("hudi").options(**options).mode("append").save(path)
    times.append(time.monotonic() - began)
print("CDS_BENCH " + json.dumps(times), flush=True)
spark.stop()
"""
PHASES = ("session", "first upsert", "second upsert")


def run(
    work: Path, rows: int, extra_options: str, label: str, launch: list[str] | None = None
) -> list[float]:
    """One fresh process: [session, first upsert, second upsert] seconds. Waits for the
    JVM (same process group) to exit too, so a recording run's archive is complete. With
    ``launch``, the Spark launcher's JVM command is appended to it."""
    table = work / f"table-{label}-{time.monotonic_ns()}"
    env = dict(os.environ, **{JAVA_OPTIONS_ENV: f"{DEFAULT_JAVA_OPTIONS} {extra_options}"})
    if launch is not None:
        env["SPARK_PRINT_LAUNCH_COMMAND"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(table), str(rows)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out, err = proc.communicate(timeout=900)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the JVM outlives its Python parent briefly
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        raise SystemExit(f"{label}: the JVM did not exit within 120 s of its Python process")
    lines = [line for line in out.splitlines() if line.startswith("CDS_BENCH ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{label} run failed (exit {proc.returncode}):\n{err[-3000:]}")
    if launch is not None:
        commands = [line for line in err.splitlines() if line.startswith("Spark Command: ")]
        if not commands:
            raise SystemExit(f"{label}: the Spark launcher printed no command:\n{err[-3000:]}")
        launch.extend(shlex.split(commands[0].removeprefix("Spark Command: ")))
    return [float(x) for x in json.loads(lines[-1].removeprefix("CDS_BENCH "))]


def dump_static(launch: list[str], class_list: Path, archive: Path) -> None:
    """``java -Xshare:dump`` of the classes a run listed, on the classpath that run's JVM
    had (the launcher's ``-cp``, wildcard and all, expanded by the java launcher as then)."""
    java, classpath = launch[0], launch[launch.index("-cp") + 1]
    heap = [option for option in launch if option.startswith("-Xmx")]
    print(f"dumping {len(class_list.read_text().splitlines())} listed classes ...", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    dump = subprocess.run(
        [
            java,
            "-Xshare:dump",
            f"-XX:SharedClassListFile={class_list}",
            f"-XX:SharedArchiveFile={archive}",
            "-Xlog:cds=off",
            *heap,
            "-cp",
            classpath,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if dump.returncode != 0:
        raise SystemExit(
            f"java -Xshare:dump failed (exit {dump.returncode}):\n{dump.stderr[-3000:]}"
        )
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"dumped in {time.monotonic() - began:.1f} s, {cpu:.1f} CPU-s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument("--rows", type=int, default=300, help="rows per upsert (default 300)")
    parser.add_argument(
        "--recording",
        choices=("dynamic", "static"),
        default="dynamic",
        help="how the archive is made: at a run's JVM exit, or by java -Xshare:dump from the "
        "class list a run wrote (default dynamic)",
    )
    args = parser.parse_args()
    if args.runs < 1 or args.rows < 1:
        parser.error(f"--runs and --rows must be at least 1, got {args.runs} and {args.rows}")
    with tempfile.TemporaryDirectory(prefix="bench-cds-") as tmp:
        work = Path(tmp)
        archive = work / "driver.jsa"
        quiet = "-Xlog:cds=off -Xlog:cds+dynamic=off"
        if args.recording == "dynamic":
            record = f"-XX:ArchiveClassesAtExit={archive} {quiet}"
            print("recording the archive (one run with -XX:ArchiveClassesAtExit) ...", flush=True)
        else:
            record = f"-XX:DumpLoadedClassList={work / 'classes.lst'}"
            print("recording the class list (one run with -XX:DumpLoadedClassList) ...", flush=True)
        launch: list[str] = []
        began = time.monotonic()
        recording = run(work, args.rows, record, "rec", launch)
        recorded_in = time.monotonic() - began
        print(
            f"recorded in {recorded_in:.1f} s (process and JVM exit); the run itself: "
            + ", ".join(f"{p} {t:.2f} s" for p, t in zip(PHASES, recording, strict=True)),
            flush=True,
        )
        if args.recording == "static":
            dump_static(launch, work / "classes.lst", archive)
        if not archive.is_file():
            raise SystemExit(f"no archive was written at {archive}")
        print(f"archive: {archive.stat().st_size / 2**20:.0f} MB", flush=True)
        sides: dict[str, list[list[float]]] = {"plain": [], "archive": []}
        for i in range(args.runs):
            for side, options in (
                ("plain", quiet),
                ("archive", f"-XX:SharedArchiveFile={archive} {quiet}"),
            ):
                times = run(work, args.rows, options, f"{side}{i}")
                sides[side].append(times)
                print(
                    f"{side:8} run {i + 1}: "
                    + "  ".join(f"{p} {t:5.2f} s" for p, t in zip(PHASES, times, strict=True))
                    + f"  total {sum(times):5.2f} s",
                    flush=True,
                )
        print(f"\nmedian of {args.runs} run(s) per side, seconds:")
        print(f"{'':8} " + "  ".join(f"{p:>13}" for p in (*PHASES, "total")))
        for side, runs in sides.items():
            columns = [statistics.median(r[k] for r in runs) for k in range(len(PHASES))]
            total = statistics.median(sum(r) for r in runs)
            print(f"{side:8} " + "  ".join(f"{v:13.2f}" for v in (*columns, total)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
