"""Pure DataFrame steps of the clean job: raw strings in, typed clean rows and quarantine out.

Every function takes and returns DataFrames and reads nothing but its arguments, so the
same code runs on AWS Glue and on a laptop and is tested with literal rows. The column
names and types all come from :mod:`glue.contract`.

Why these rules:

* Raw feeds deliver strings. A value that is present but cannot be parsed into its
  column's type makes the row unfit for the clean table; rather than silently turning it
  into NULL (which would look like a real NULL downstream) the row goes to quarantine with
  a reason naming the column and the value.
* Without a key the upsert cannot place a row, and without an event time the ordering
  (late-arrival protection) cannot be applied: both quarantine the row.
* An event time beyond the horizon (the run's time plus a margin) is a corrupt clock or a
  typo such as 9999-12-31: loaded, it would poison every later night's date range, so the
  row is quarantined with a reason naming the value and the horizon.
* A batch may carry the same key more than once; the upsert needs one row per key, and
  the newest by event time (then by source processing time) is the one that would win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from glue.contract import ETL_PROCESSING_DATETIME, ColumnType, TableContract

CORRUPT_RECORD = "_corrupt_record"
QUARANTINE_REASON = "quarantine_reason"
RAW_RECORD = "raw_record"

# Formats a raw timestamp may arrive in; tried in order. Naive values are read in the
# session time zone, which the job pins to UTC.
TIMESTAMP_FORMATS = ("yyyy-MM-dd HH:mm:ss[.SSSSSS]", "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS][XXX]")
DATE_FORMAT = "yyyy-MM-dd"

# Session settings the transforms expect. Naive timestamps are UTC. Constraint
# propagation is off because, with one parse and one check expression per raw column, the
# optimizer's constraint inference grows combinatorially (minutes and an OutOfMemoryError
# planning a one-row store_sale batch); it changes plans, never results.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.constraintPropagation.enabled": "false",
}

_TYPED = "__typed_"
_RANK = "__rank"


def spark_type(column_type: ColumnType) -> T.DataType:
    """The Spark type of a contract column type."""
    mapping: dict[str, T.DataType] = {
        "string": T.StringType(),
        "timestamp": T.TimestampType(),
        "date": T.DateType(),
        "int": T.IntegerType(),
        "bigint": T.LongType(),
        "decimal(7,2)": T.DecimalType(7, 2),
        "decimal(5,2)": T.DecimalType(5, 2),
    }
    try:
        return mapping[column_type]
    except KeyError:
        raise ValueError(
            f"unknown contract column type {column_type!r}; expected one of: {', '.join(mapping)}"
        ) from None


def raw_schema(contract: TableContract) -> T.StructType:
    """All raw columns as strings, plus Spark's slot for lines that are not valid records."""
    fields = [T.StructField(c.name, T.StringType()) for c in contract.raw_columns]
    return T.StructType([*fields, T.StructField(CORRUPT_RECORD, T.StringType())])


def clean_schema(contract: TableContract) -> T.StructType:
    """The clean table's schema, in contract order."""
    return T.StructType([T.StructField(c.name, spark_type(c.type)) for c in contract.clean_columns])


def _text(name: str) -> Column:
    """A raw value trimmed, with empty strings as NULL (feeds use both for 'missing')."""
    trimmed = F.trim(F.col(name))
    return F.when(trimmed == "", F.lit(None)).otherwise(trimmed)


def _parse(name: str, column_type: ColumnType) -> Column:
    text = _text(name)
    if column_type == "string":
        if name == "zip":
            # Zip codes are strings; a numeric zip that lost its leading zeros is restored.
            return F.when(text.rlike(r"^[0-9]{1,4}$"), F.lpad(text, 5, "0")).otherwise(text)
        return text
    if column_type == "timestamp":
        return F.coalesce(*(F.try_to_timestamp(text, F.lit(fmt)) for fmt in TIMESTAMP_FORMATS))
    if column_type == "date":
        return F.try_to_timestamp(text, F.lit(DATE_FORMAT)).cast(T.DateType())
    # try_cast: NULL instead of an error, whatever spark.sql.ansi.enabled says.
    return F.expr(f"try_cast(trim(`{name}`) AS {spark_type(column_type).simpleString()})")


def type_columns(
    raw: DataFrame, contract: TableContract, horizon: datetime | None = None
) -> DataFrame:
    """Add a typed twin of every raw column and the reason (if any) the row cannot be used.

    The raw strings are kept so that quarantined rows are written exactly as received.
    ``horizon``: the latest event time accepted (naive UTC); later ones are quarantined.
    """
    typed = [_parse(c.name, c.type).alias(_TYPED + c.name) for c in contract.raw_columns]
    df = raw.select(*(F.col(c.name) for c in contract.raw_columns), F.col(CORRUPT_RECORD), *typed)
    reasons: list[Column] = [F.when(F.col(CORRUPT_RECORD).isNotNull(), F.lit("malformed record"))]
    for column in contract.raw_columns:
        present = _text(column.name).isNotNull()
        parsed = F.col(_TYPED + column.name).isNotNull()
        if column.name in contract.key or column.name == contract.ordering:
            role = "key" if column.name in contract.key else "ordering"
            reasons.append(
                F.when(
                    F.col(CORRUPT_RECORD).isNull() & ~present,
                    F.lit(f"missing {role} {column.name}"),
                )
            )
        reasons.append(
            F.when(
                present & ~parsed,
                F.concat(
                    F.lit(f"unparseable {column.type} {column.name}: '"),
                    F.col(column.name),
                    F.lit("'"),
                ),
            )
        )
    if horizon is not None:
        event_time = F.col(_TYPED + contract.ordering)
        limit = F.lit(horizon).cast(T.TimestampType())
        reasons.append(
            F.when(
                event_time > limit,
                F.concat(
                    F.lit(f"{contract.ordering} '"),
                    F.col(contract.ordering),
                    F.lit(f"' is beyond the event-time horizon {horizon:%Y-%m-%d %H:%M:%S}"),
                ),
            )
        )
    return df.withColumn(QUARANTINE_REASON, F.concat_ws("; ", *reasons))


def split_quarantine(typed: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(rows fit for cleaning, rows to quarantine); a row is quarantined iff it has a reason."""
    bad = F.col(QUARANTINE_REASON) != ""
    return typed.where(~bad), typed.where(bad)


def quarantine_rows(
    rejected: DataFrame, contract: TableContract, etl_processing_datetime: datetime
) -> DataFrame:
    """Rejected rows as received (raw strings), with the reason and the run's timestamp."""
    return rejected.select(
        *(F.col(c.name) for c in contract.raw_columns),
        F.col(CORRUPT_RECORD).alias(RAW_RECORD),
        F.col(QUARANTINE_REASON),
        F.lit(etl_processing_datetime).cast(T.TimestampType()).alias(ETL_PROCESSING_DATETIME),
    )


def deduplicate(typed: DataFrame, contract: TableContract) -> DataFrame:
    """Keep one row per key: the latest event time, then the latest processing time.

    A final tie-break on a hash of the whole row makes the choice deterministic for rows
    that agree on both times but differ elsewhere.
    """
    key = [F.col(_TYPED + k) for k in contract.key]
    row_hash = F.xxhash64(*(F.col(_TYPED + c.name) for c in contract.raw_columns))
    window = Window.partitionBy(*key).orderBy(
        F.col(_TYPED + contract.ordering).desc(),
        F.col(_TYPED + "processing_datetime").desc_nulls_last(),
        row_hash.desc(),
    )
    return typed.withColumn(_RANK, F.row_number().over(window)).where(F.col(_RANK) == 1).drop(_RANK)


def to_clean(
    typed: DataFrame, contract: TableContract, etl_processing_datetime: datetime
) -> DataFrame:
    """Project typed rows onto the clean table's columns, in contract order."""
    columns = [F.col(_TYPED + c.name).alias(c.name) for c in contract.raw_columns]
    columns.append(
        F.lit(etl_processing_datetime).cast(T.TimestampType()).alias(ETL_PROCESSING_DATETIME)
    )
    columns.append(F.to_date(F.col(_TYPED + contract.ordering)).alias(contract.partition))
    return typed.select(*columns)


@dataclass(frozen=True)
class CleanBatch:
    """The three outputs of one raw batch; lazily evaluated DataFrames."""

    typed: DataFrame
    clean: DataFrame
    quarantine: DataFrame


def clean_batch(
    raw: DataFrame,
    contract: TableContract,
    etl_processing_datetime: datetime,
    *,
    horizon: datetime | None = None,
) -> CleanBatch:
    """Type, quarantine and de-duplicate one raw batch (the whole transform, composed)."""
    typed = type_columns(raw, contract, horizon)
    good, bad = split_quarantine(typed)
    clean = to_clean(deduplicate(good, contract), contract, etl_processing_datetime)
    return CleanBatch(
        typed=typed,
        clean=clean,
        quarantine=quarantine_rows(bad, contract, etl_processing_datetime),
    )
