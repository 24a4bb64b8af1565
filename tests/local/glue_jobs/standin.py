"""A stand-in Glue job script: behaves as its arguments say, so service tests need no Spark.

--sleep S         sleep S seconds first (a long-running job)
--fail_with MSG   raise RuntimeError(MSG) (the last line of the traceback is the error)
--args_out PATH   write the arguments it received as JSON (to check what Glue passed)
--write_delta K1,K2  write a Delta table <clean_path>/<table> holding rows with these keys
                  (other columns NULL), as the clean job's local sink would
"""

import json
import sys
import time


def parse(argv: list[str]) -> dict[str, str]:
    # Glue style: --key value pairs; unknown keys are ignored like getResolvedOptions does.
    return {
        argv[i][2:]: argv[i + 1] for i in range(0, len(argv) - 1, 2) if argv[i].startswith("--")
    }


def write_delta(clean_path: str, table: str, keys: list[str]) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from glue.contract import table_contract
    from local.warehouse.catalog_sync import column_types

    contract = table_contract(table)
    data = pa.table(
        {
            c.name: pa.array(
                keys if c.name == contract.key[0] else [None] * len(keys), column_types(c.type)[1]
            )
            for c in contract.clean_columns
        }
    )
    write_deltalake(f"{clean_path}/{table}", data, mode="overwrite")


def main(argv: list[str]) -> None:
    args = parse(argv)
    print(f"stand-in job {args.get('JOB_NAME')} run {args.get('JOB_RUN_ID')} started", flush=True)
    if "args_out" in args:
        with open(args["args_out"], "w") as handle:
            json.dump(args, handle)
    time.sleep(float(args.get("sleep", "0")))
    if "write_delta" in args:
        write_delta(args["clean_path"], args["table"], args["write_delta"].split(","))
    if "fail_with" in args:
        print("WARN something unrelated happened earlier", flush=True)
        raise RuntimeError(args["fail_with"])
    print("stand-in job done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
