-- The presentation layer: the star schema that reports read.
create schema if not exists dw_mystore;
