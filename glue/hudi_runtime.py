"""Which Hudi the job runs with, where it comes from, and the fail-fast checks around it.

On Glue, ``--datalake-formats hudi`` puts Glue's own Hudi build on the classpath; its
version is fixed by the Glue version (4.0: 0.12.1, 5.0: 0.15.0, 5.1: 1.0.x). The job's
write options differ between Hudi 0.x and 1.x (``glue.hudi_options``), so a job whose
options were written for another Hudi than the one it runs on must stop before writing,
not corrupt a table or silently lose event-time ordering.

On a laptop the same Hudi comes from Maven Central: Spark resolves ``spark.jars.packages``
into its Ivy cache (``~/.ivy2`` unless ``MYSTORE_IVY_DIR`` says otherwise) on first use,
so only the first run downloads (about 107 MB for the Spark bundle, 19 MB for the AWS
catalog sync). Offline and uncached, resolution fails; ``offline_message`` names the fix
and the explicit Delta Lake fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from glue.hudi_options import HudiVersion, hudi_version_of

# Glue version -> the Hudi release that `--datalake-formats hudi` provides.
GLUE_HUDI_RELEASES: dict[str, str] = {"4.0": "0.12.1", "5.0": "0.15.0", "5.1": "1.0.2"}
DEFAULT_GLUE_VERSION = "5.0"
DEFAULT_MAVEN_REPOSITORY = "https://repo1.maven.org/maven2/"
IVY_DIR_ENV = "MYSTORE_IVY_DIR"
MAVEN_REPOSITORY_ENV = "MYSTORE_MAVEN_REPOSITORY"
LOCAL_TABLE_FORMAT_ENV = "MYSTORE_LOCAL_TABLE_FORMAT"
# The class Spark loads for ``format("hudi")``; its jar's manifest carries the version.
HUDI_SOURCE_CLASS = "org.apache.hudi.DefaultSource"


class HudiRuntimeError(Exception):
    """Hudi is missing, of the wrong version, or cannot be downloaded; the run must stop."""


@dataclass(frozen=True)
class MavenArtifact:
    group: str
    artifact: str
    version: str

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    def ivy_cached_jar(self, ivy_dir: Path) -> Path:
        """Where Spark's Ivy resolution keeps the downloaded jar."""
        return (
            ivy_dir
            / "cache"
            / self.group
            / self.artifact
            / "jars"
            / (f"{self.artifact}-{self.version}.jar")
        )


# The jars a laptop needs to run the Glue 5.0 job: the Spark bundle Glue 5.0 uses, and
# hudi-aws for the Glue Data Catalog sync tool (Glue ships it; the Spark bundle does not).
LOCAL_HUDI_ARTIFACTS: dict[HudiVersion, tuple[MavenArtifact, ...]] = {
    "0.15": (
        MavenArtifact("org.apache.hudi", "hudi-spark3.5-bundle_2.12", "0.15.0"),
        MavenArtifact("org.apache.hudi", "hudi-aws", "0.15.0"),
    ),
    "1.0": (
        MavenArtifact("org.apache.hudi", "hudi-spark3.5-bundle_2.12", "1.0.2"),
        MavenArtifact("org.apache.hudi", "hudi-aws", "1.0.2"),
    ),
}
# hudi-aws depends on Hudi modules that the Spark bundle already contains.
BUNDLED_MODULES = (
    "org.apache.hudi:hudi-common",
    "org.apache.hudi:hudi-hive-sync",
    "org.apache.hudi:hudi-client-common",
)


def ivy_dir(env: dict[str, str] | os._Environ[str] | None = None) -> Path:
    environ = os.environ if env is None else env
    return Path(environ.get(IVY_DIR_ENV) or Path.home() / ".ivy2").expanduser()


def missing_artifacts(version: HudiVersion, ivy: Path) -> list[MavenArtifact]:
    """The local Hudi jars not yet in the Ivy cache (empty: nothing will be downloaded)."""
    return [a for a in LOCAL_HUDI_ARTIFACTS[version] if not a.ivy_cached_jar(ivy).exists()]


def ivy_settings_xml(repository: str) -> str:
    """Ivy settings that resolve from one Maven repository only.

    Spark's default settings also try repos.spark-packages.org, which prints a warning per
    artifact on machines that cannot reach it; one repository keeps the log to one line.
    """
    return (
        "<ivysettings>\n"
        '  <settings defaultResolver="mystore"/>\n'
        "  <resolvers>\n"
        f'    <ibiblio name="mystore" m2compatible="true" root={quoteattr(repository)}/>\n'
        "  </resolvers>\n"
        "</ivysettings>\n"
    )


def local_spark_conf(
    version: HudiVersion, ivy: Path, repository: str = DEFAULT_MAVEN_REPOSITORY
) -> dict[str, str]:
    """spark.jars.* settings that resolve the local Hudi jars through ``ivy`` from ``repository``."""
    settings = ivy / "mystore-ivysettings.xml"
    settings.parent.mkdir(parents=True, exist_ok=True)
    text = ivy_settings_xml(repository)
    if not settings.exists() or settings.read_text() != text:
        settings.write_text(text)
    return {
        "spark.jars.packages": ",".join(a.coordinate for a in LOCAL_HUDI_ARTIFACTS[version]),
        "spark.jars.excludes": ",".join(BUNDLED_MODULES),
        "spark.jars.ivy": str(ivy),
        "spark.jars.ivySettings": str(settings),
    }


def offline_message(version: HudiVersion, repository: str, ivy: Path, cause: str) -> str:
    coordinates = ", ".join(a.coordinate for a in LOCAL_HUDI_ARTIFACTS[version])
    return (
        f"could not resolve the Hudi jars ({coordinates}) from {repository} into {ivy}: "
        f"{cause}. Fix: connect this machine to the internet once (the jars are cached "
        f"afterwards), or set {MAVEN_REPOSITORY_ENV} to a reachable Maven mirror, or point "
        f"MYSTORE_HUDI_BUNDLE_JAR at a downloaded Hudi Spark bundle jar. To run without Hudi, "
        f"set {LOCAL_TABLE_FORMAT_ENV}=delta (the local Delta Lake fallback)."
    )


def expected_hudi_release(glue_version: str) -> str:
    try:
        return GLUE_HUDI_RELEASES[glue_version]
    except KeyError:
        raise HudiRuntimeError(
            f"unsupported --glue_version {glue_version!r}; expected one of: "
            f"{', '.join(GLUE_HUDI_RELEASES)}"
        ) from None


def check_options_match_glue(glue_version: str, options_version: HudiVersion) -> str:
    """The Hudi release of ``glue_version``, if the job's options are written for it."""
    release = expected_hudi_release(glue_version)
    family = _family(release)
    if family != options_version:
        raise HudiRuntimeError(
            f"--hudi_version {options_version} options do not match Glue {glue_version}, "
            f"which provides Hudi {release}; set --hudi_version {release} or change the "
            f"job's Glue version"
        )
    return release


def _family(release: str) -> HudiVersion | None:
    try:
        return hudi_version_of(release)
    except ValueError:
        return None


def runtime_hudi_release(spark: Any) -> str | None:
    """The Hudi release on the session's classpath; raises if Hudi is not there at all."""
    jvm = spark.sparkContext._jvm
    try:
        source = jvm.java.lang.Class.forName(
            HUDI_SOURCE_CLASS, True, jvm.Thread.currentThread().getContextClassLoader()
        )
    except Exception as exc:
        raise HudiRuntimeError(
            "Hudi is not enabled in this Spark session (class "
            f"{HUDI_SOURCE_CLASS} not found): on Glue, add the job parameter "
            "'--datalake-formats hudi' (deployments/glue_job.py does) and "
            "'--conf spark.serializer=org.apache.spark.serializer.KryoSerializer'"
        ) from exc
    package = source.getPackage()
    version = package.getImplementationVersion() if package is not None else None
    return str(version) if version else None


def check_runtime(spark: Any, options_version: HudiVersion, glue_version: str | None) -> str:
    """Fail fast unless the session has Hudi, of the family the options are written for.

    ``glue_version`` (a job argument set by the deployment) is checked too, so a job
    deployed on Glue 4.0 with 0.15 options stops here with a message naming both.
    """
    if glue_version is not None:
        check_options_match_glue(glue_version, options_version)
    release = runtime_hudi_release(spark)
    serializer = spark.conf.get("spark.serializer", "")
    if "KryoSerializer" not in serializer:
        raise HudiRuntimeError(
            f"spark.serializer is {serializer or 'unset'!r}; Hudi needs "
            "org.apache.spark.serializer.KryoSerializer (Glue: '--conf "
            "spark.serializer=org.apache.spark.serializer.KryoSerializer')"
        )
    if release is not None and _family(release) != options_version:
        raise HudiRuntimeError(
            f"the Spark session runs Hudi {release}, but the job's options are for Hudi "
            f"{options_version}; set --hudi_version to match (Glue 4.0: 0.12.1, "
            "5.0: 0.15.0, 5.1: 1.0.x)"
        )
    return release or "unknown"
