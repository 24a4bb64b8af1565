"""A stand-in Glue job script that does real Spark work, for the warm-driver tests.

It is called as the warm driver calls the clean job: ``main(argv)`` with Glue's argv.

--spark_sleep S   run one Spark job whose single task sleeps S seconds (cancellable)
--count N         count spark.range(N) and print "count N"
--fail_with MSG   raise RuntimeError(MSG) after the Spark work
"""

from __future__ import annotations

import sys
import time


def parse(argv: list[str]) -> dict[str, str]:
    return {
        argv[i][2:]: argv[i + 1] for i in range(0, len(argv) - 1, 2) if argv[i].startswith("--")
    }


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import SparkSession

    args = parse(list(sys.argv[1:] if argv is None else argv))
    spark = SparkSession.builder.getOrCreate()
    print(f"spark stand-in run {args.get('JOB_RUN_ID')} started", flush=True)
    seconds = float(args.get("spark_sleep", "0"))
    if seconds:
        spark.sparkContext.parallelize([seconds], 1).foreach(lambda s: time.sleep(s))
    if "count" in args:
        print(f"count {spark.range(int(args['count'])).count()}", flush=True)
    if "fail_with" in args:
        raise RuntimeError(args["fail_with"])
    print("spark stand-in done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
