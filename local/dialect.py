"""Moved to ``local.warehouse.dialect``; this alias keeps ``flows/migrate.py`` importing
until the migrations package takes the translation as a parameter (issue 9, item 1).
Delete it once nothing imports ``local.dialect``."""

from local.warehouse.dialect import translate_statement

__all__ = ["translate_statement"]
