-- Backfills the sales of a date range from stg_mystore.store_sale (staged beforehand by
-- sp_copy_data), after bringing customers up to date. One transaction, like the nightly;
-- SECURITY DEFINER and analyzed like it (see sp_run_incremental_load).
create or replace procedure stg_mystore.sp_run_history_load(
    p_start_date date,
    p_end_date date
)
as $$
begin
    call stg_mystore.sp_validate_parameters('HISTORY', p_start_date, p_end_date);
    call stg_mystore.sp_load_customer_dim();
    call stg_mystore.sp_load_sale_fact('HISTORY', p_start_date, p_end_date);
    analyze dw_mystore.customer_dim predicate columns;
    analyze dw_mystore.sale_fact predicate columns;
end;
$$ language plpgsql
security definer
set search_path = stg_mystore;

revoke execute on procedure stg_mystore.sp_run_history_load(date, date) from public;
grant execute on procedure stg_mystore.sp_run_history_load(date, date) to role mystore_etl;
