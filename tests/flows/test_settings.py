import pytest
from pydantic import ValidationError

from flows.settings import Settings, settings_glue_arguments


def test_defaults_are_the_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("MYSTORE_"):
            monkeypatch.delenv(key)
    settings = Settings()
    assert settings.target == "local"
    assert settings.database == "dev"
    assert settings.statement_timeout_seconds == 6 * 3600


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYSTORE_TARGET", "aws")
    monkeypatch.setenv("MYSTORE_WORKGROUP_NAME", "mystore-wg")
    monkeypatch.setenv("MYSTORE_RAW_PATH", "s3://bucket-a/raw")
    monkeypatch.setenv("MYSTORE_CLEAN_PATH", "s3://bucket-a/clean")
    settings = Settings()
    assert (settings.target, settings.workgroup_name) == ("aws", "mystore-wg")


_PATHS = {"raw_path": "s3://bkt/r", "clean_path": "s3://bkt/c"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "aws", "raw_path": "s3://bkt/r", "clean_path": "s3://bkt/c"}, "exactly one of"),
        (
            {
                "target": "aws",
                "cluster_identifier": "c",
                "workgroup_name": "w",
                "raw_path": "s3://bkt/r",
                "clean_path": "s3://bkt/c",
            },
            "exactly one of",
        ),
        (
            {
                "target": "aws",
                "cluster_identifier": "c",
                "raw_path": "s3://bkt/r",
                "clean_path": "s3://bkt/c",
            },
            "MYSTORE_DB_USER or MYSTORE_SECRET_ARN",
        ),
        ({"target": "aws", "workgroup_name": "mystore-wg"}, "MYSTORE_RAW_PATH, MYSTORE_CLEAN_PATH"),
        # The Data API block's own rules, before anything starts (names of the variables)
        (
            {"target": "aws", "workgroup_name": "wg", **_PATHS},
            "MYSTORE_WORKGROUP_NAME 'wg' is invalid; allowed: 3-63",
        ),
        (
            {"target": "aws", "cluster_identifier": "Bad_Cluster", "db_user": "u", **_PATHS},
            "MYSTORE_CLUSTER_IDENTIFIER 'Bad_Cluster' is invalid",
        ),
        (
            {"target": "aws", "workgroup_name": "mystore-wg", "db_user": "u", **_PATHS},
            "MYSTORE_DB_USER is not accepted for a Serverless workgroup",
        ),
        (
            {
                "target": "aws",
                "cluster_identifier": "c",
                "db_user": "u",
                "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
                **_PATHS,
            },
            r"exactly one of MYSTORE_DB_USER \(temporary credentials\) or MYSTORE_SECRET_ARN",
        ),
        ({"secret_arn": "not-an-arn"}, "'not-an-arn' is not a Secrets Manager ARN"),
        ({"raw_path": "s3://UPPER_bucket/x"}, "MYSTORE_RAW_PATH 's3://UPPER_bucket/x' is invalid"),
        ({"glue_report_path": "s3://r/x"}, "MYSTORE_GLUE_REPORT_PATH 's3://r/x' is invalid"),
        (
            {"clean_path": "/lake/clean[1]/{a,b}"},
            r"MYSTORE_CLEAN_PATH '/lake/clean\[1\]/\{a,b\}' holds '\[', '\]', '\{', '\}',"
            " which Spark reads as a glob",
        ),
        ({"target": "gcp"}, "Input should be 'local' or 'aws'"),
        ({"glue_number_of_workers": 1}, "greater than or equal to 2"),
        ({"statement_timeout_seconds": "soon"}, "valid number"),
    ],
)
def test_bad_settings_name_the_value(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**fields)  # type: ignore[arg-type]


def test_allowing_empty_input_reaches_the_clean_job_as_its_argument(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("MYSTORE_")]:
        monkeypatch.delenv(key)
    assert "--allow_empty_input" not in settings_glue_arguments(Settings())  # default: fail
    monkeypatch.setenv("MYSTORE_ALLOW_EMPTY_INPUT", "true")
    monkeypatch.setenv("MYSTORE_RAW_PATH", "/lake/raw")
    assert settings_glue_arguments(Settings()) == {
        "--raw_path": "/lake/raw",
        "--allow_empty_input": "true",
    }


def test_allowing_empty_input_on_aws_needs_the_clean_reports() -> None:
    """Checked before a night with clean steps, not on every read of the settings (the stop
    hooks and the resumer build them too, and must keep working)."""
    fields: dict[str, object] = {"target": "aws", "workgroup_name": "mystore-wg", **_PATHS}
    settings = Settings(allow_empty_input=True, **fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs MYSTORE_GLUE_REPORT_PATH"):
        settings.check_clean_reports()
    Settings(
        allow_empty_input=True, glue_report_path="s3://bkt/reports", **fields
    ).check_clean_reports()  # type: ignore[arg-type]
    Settings(allow_empty_input=True).check_clean_reports()  # the embedded default keeps its own
