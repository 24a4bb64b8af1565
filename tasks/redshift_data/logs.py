"""The logger type the sync code accepts, so Prefect can pass its run logger in."""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

LoggerLike: TypeAlias = logging.Logger | logging.LoggerAdapter[Any]

log = logging.getLogger("tasks.redshift_data")
