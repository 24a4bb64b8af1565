"""The Redshift Data API over the local warehouse (see docs/local.md)."""

from local.data_api.service import TARGET_PREFIX, RedshiftDataService

__all__ = ["TARGET_PREFIX", "RedshiftDataService"]
