-- The ETL role: what the Data API user of the nightly and history loads needs, no more.
-- The entry procedures are SECURITY DEFINER (they read and write the tables as their
-- owner); this role may execute them (granted in their R__ files), find them in
-- stg_mystore, use the external schema, and read what the data-quality checks read.
-- Give it to the Data API user once: grant role mystore_etl to <user>;
create role mystore_etl;
grant usage on schema stg_mystore to role mystore_etl;
grant usage on schema dw_mystore to role mystore_etl;
grant usage on schema ext_clean_mystore to role mystore_etl;
grant select on stg_mystore.dw_incremental_dates to role mystore_etl;
grant select on all tables in schema dw_mystore to role mystore_etl;
