"""Deterministic sample raw data and the truth about it (``python -m local.sample_data``)."""

from local.sample_data.generate import (
    TRUTH_FILE,
    GenerateConfig,
    day_is_complete,
    generate,
    raw_partition,
    saved_days,
)
from local.sample_data.partitions import SampleRangeError, write_partition

__all__ = [
    "TRUTH_FILE",
    "GenerateConfig",
    "SampleRangeError",
    "day_is_complete",
    "generate",
    "raw_partition",
    "saved_days",
    "write_partition",
]
