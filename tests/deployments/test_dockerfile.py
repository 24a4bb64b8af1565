"""The Dockerfile builds what prefect.yaml's ECS variant runs (parsed, not built).

The ECS pull step sets the working directory the image must hold the code in; every
deployment's entrypoint must be copied there; dependencies come from the lock file with
uv; and nothing installs Java (Glue runs Spark on AWS).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def prefect_yaml() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_workdir_is_the_ecs_pull_directory() -> None:
    (pull,) = prefect_yaml()["definitions"]["pull"]["ecs"]
    directory = pull["prefect.deployments.steps.set_working_directory"]["directory"]
    workdirs = [args for word, args in instructions() if word == "WORKDIR"]
    assert workdirs[-1] == directory


def test_every_aws_deployment_entrypoint_is_copied_into_the_image() -> None:
    """The image runs the AWS deployments; the laptop ones (pool ``mystore-local``, target
    local) run from the user's checkout next to ``python -m local up`` and are left out of
    the ECS variant too, so the image needs no ``local/``."""
    copied = {args.split()[0].rstrip("/") for word, args in instructions() if word == "COPY"}
    deployments = prefect_yaml()["deployments"]
    aws = [d for d in deployments if d["work_pool"]["name"] != "mystore-local"]
    assert len(aws) == 3 and len(deployments) == 5
    for deployment in aws:
        path = deployment["entrypoint"].split(":")[0]
        assert (REPO / path).is_file(), path
        assert path.split("/")[0] in copied, f"{path} is not copied into the image"


def test_dependencies_come_from_the_lock_file_with_uv_and_no_java() -> None:
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    copied = " ".join(args for word, args in instructions() if word == "COPY")
    assert "uv sync --locked" in runs and "--no-dev" in runs
    assert "uv.lock" in copied
    code = " ".join(f"{word} {args}" for word, args in instructions())  # comments dropped
    assert not re.search(r"\b(java|jdk|jre|openjdk)\b", code, re.I)


def test_ecs_image_is_the_one_documented() -> None:
    image = prefect_yaml()["definitions"]["work_pools"]["ecs"]["job_variables"]["image"]
    assert image.endswith("/mystore-elt:latest")
    assert "mystore-elt:latest" in DOCKERFILE.read_text()
