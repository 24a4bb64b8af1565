-- The nightly load: customers first, so the sales of the night find their customer.
-- One CALL is one transaction: if the sale load fails, the customer load is undone too
-- and the high-water marks stay where they were. The loaded tables are analyzed (on the
-- columns queries filter and join on) so the next queries plan with fresh statistics.
-- SECURITY DEFINER with a fixed search_path: the ETL role (V012) runs the night without
-- owning the tables, and nothing on its search_path can stand in for them.
create or replace procedure stg_mystore.sp_run_incremental_load()
as $$
begin
    call stg_mystore.sp_load_customer_dim();
    call stg_mystore.sp_load_sale_fact('INCREMENTAL', null, null);
    analyze dw_mystore.customer_dim predicate columns;
    analyze dw_mystore.sale_fact predicate columns;
end;
$$ language plpgsql
security definer
set search_path = stg_mystore;

revoke execute on procedure stg_mystore.sp_run_incremental_load() from public;
grant execute on procedure stg_mystore.sp_run_incremental_load() to role mystore_etl;
