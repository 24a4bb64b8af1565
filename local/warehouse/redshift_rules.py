"""The rules of the Redshift compatibility gate: each PostgreSQL-only form, and its page.

Split from redshift_compat.py (which scans SQL for these forms) so that the list of what the
gate refuses -- the part a reader checks against the Redshift developer guide and extends
when a night fails on Redshift -- reads on its own, without the token-matching around it.
Every rule cites the guide page that says Redshift rejects the form; the gate's errors name
that page.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "Rule"]

_DG = "https://docs.aws.amazon.com/redshift/latest/dg/"
PLPGSQL_PAGE = _DG + "c_PLpgSQL-statements.html"
UNSUPPORTED_FEATURES_PAGE = _DG + "c_unsupported-postgresql-features.html"
UNSUPPORTED_FUNCTIONS_PAGE = _DG + "c_unsupported-postgresql-functions.html"
UNSUPPORTED_TYPES_PAGE = _DG + "c_unsupported-postgresql-datatypes.html"
LEADER_NODE_PAGE = _DG + "c_SQL_functions_leader_node_only.html"
INSERT_PAGE = _DG + "r_INSERT_30.html"
SELECT_LIST_PAGE = _DG + "r_SELECT_list.html"
AGGREGATES_PAGE = _DG + "c_Aggregate_Functions.html"
TRANSACTIONS_PAGE = _DG + "stored-procedure-transaction-management.html"
CREATE_INDEX = "CREATE INDEX"


@dataclass(frozen=True)
class Rule:
    """A PostgreSQL-only form, why Redshift rejects it, and the page that says so."""

    construct: str
    reason: str
    doc_url: str


RULES: dict[str, Rule] = {
    "raise_argument": Rule(
        "RAISE with an expression argument",
        "Redshift's RAISE takes only simple variables after the format string"
        " (RAISE level 'format' [, variable [, ...]]): assign the expression to a variable first",
        PLPGSQL_PAGE,
    ),
    "raise_form": Rule(
        "RAISE without level and format string",
        "Redshift's RAISE is RAISE level 'format' [, variable ...] with level NOTICE, INFO,"
        " LOG, WARNING or EXCEPTION (no condition names, SQLSTATE or USING)",
        PLPGSQL_PAGE,
    ),
    "exception_condition": Rule(
        "EXCEPTION WHEN <condition> other than OTHERS",
        "Redshift procedures trap errors only with EXCEPTION WHEN OTHERS THEN",
        PLPGSQL_PAGE,
    ),
    "on_conflict": Rule(
        "INSERT ... ON CONFLICT",
        "Redshift has no upsert clause: use MERGE, or DELETE then INSERT",
        INSERT_PAGE,
    ),
    "returning": Rule(
        "RETURNING",
        "INSERT / UPDATE / DELETE ... RETURNING is not supported by Redshift",
        INSERT_PAGE,
    ),
    "aggregate_filter": Rule(
        "aggregate FILTER (WHERE ...)",
        "Redshift aggregates take no FILTER clause: use agg(CASE WHEN ... THEN x END)",
        AGGREGATES_PAGE,
    ),
    "distinct_on": Rule(
        "SELECT DISTINCT ON (...)",
        "Redshift's select list has DISTINCT but not DISTINCT ON: use ROW_NUMBER() OVER",
        SELECT_LIST_PAGE,
    ),
    "array_function": Rule(
        "array aggregate or set function (STRING_AGG, ARRAY_AGG, UNNEST, ...)",
        "PostgreSQL array and string-aggregate functions are not supported by Redshift"
        " (LISTAGG is Redshift's string aggregate)",
        UNSUPPORTED_FUNCTIONS_PAGE,
    ),
    "array_type": Rule(
        "array type or constructor (type[], ARRAY[...], ARRAY(SELECT ...))",
        "Redshift has no PostgreSQL arrays (SUPER holds semi-structured data)",
        UNSUPPORTED_TYPES_PAGE,
    ),
    "leader_node_function": Rule(
        "leader node-only function used with a user table",
        "this function runs only on the leader node; a statement that also reads or writes"
        " a user table runs on the compute nodes and fails",
        LEADER_NODE_PAGE,
    ),
    "create_index": Rule(
        CREATE_INDEX,
        "Redshift has no secondary indexes: use SORTKEY / DISTKEY",
        UNSUPPORTED_FEATURES_PAGE,
    ),
    "transaction_control": Rule(
        "COMMIT / ROLLBACK / TRUNCATE in a procedure called inside a transaction block",
        "a procedure called inside a transaction block (BEGIN ... or a TRANSACTION batch)"
        " cannot COMMIT, ROLLBACK or TRUNCATE: call it on its own",
        TRANSACTIONS_PAGE,
    ),
    "truncate_commit": Rule(
        "TRUNCATE together with other changes",
        "TRUNCATE commits the current transaction on Redshift (also inside a procedure), so"
        " what ran before it can no longer roll back: use DELETE FROM",
        TRANSACTIONS_PAGE,
    ),
}
