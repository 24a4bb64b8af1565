-- Staging: high-water marks, work tables, source views and the load procedures.
create schema if not exists stg_mystore;
