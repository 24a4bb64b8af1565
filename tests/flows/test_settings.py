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
    monkeypatch.setenv("MYSTORE_WORKGROUP_NAME", "wg")
    monkeypatch.setenv("MYSTORE_RAW_PATH", "s3://bucket-a/raw")
    monkeypatch.setenv("MYSTORE_CLEAN_PATH", "s3://bucket-a/clean")
    settings = Settings()
    assert (settings.target, settings.workgroup_name) == ("aws", "wg")


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
        ({"target": "aws", "workgroup_name": "w"}, "MYSTORE_RAW_PATH, MYSTORE_CLEAN_PATH"),
        ({"secret_arn": "not-an-arn"}, "'not-an-arn' is not a Secrets Manager ARN"),
        ({"raw_path": "s3://UPPER_bucket/x"}, "must be an s3://bucket/prefix URI"),
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
