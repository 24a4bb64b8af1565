-- History load, step 1 (any target): stages the sales of a date range from the clean
-- table (Spectrum on Redshift, the synced local copy on the embedded default) into
-- stg_mystore.store_sale. The alternative to sp_copy_data when the clean table already
-- holds the history. The range is replaced, so a rerun stages it once. SECURITY DEFINER:
-- the ETL role calls it without owning the staging table.
create or replace procedure stg_mystore.sp_stage_store_sale(
    p_start_date date,
    p_end_date date
)
as $$
begin
    call stg_mystore.sp_validate_parameters('HISTORY', p_start_date, p_end_date);
    delete from stg_mystore.store_sale
    where sale_date between p_start_date and p_end_date;
    insert into stg_mystore.store_sale (
        ticket_id, item_id, sale_datetime, quantity, wholesale_cost, list_price,
        sales_price, ext_discount_amt, ext_sales_price, ext_wholesale_cost,
        ext_list_price, ext_tax, coupon_amt, net_paid, net_paid_inc_tax, net_profit,
        customer_id, store_id, promo_id, processing_datetime, etl_processing_datetime,
        sale_date
    )
    select
        ticket_id, item_id, sale_datetime, quantity, wholesale_cost, list_price,
        sales_price, ext_discount_amt, ext_sales_price, ext_wholesale_cost,
        ext_list_price, ext_tax, coupon_amt, net_paid, net_paid_inc_tax, net_profit,
        customer_id, store_id, promo_id, processing_datetime, etl_processing_datetime,
        sale_date
    from ext_clean_mystore.store_sale
    where sale_date between p_start_date and p_end_date;
end;
$$ language plpgsql
security definer
set search_path = stg_mystore;

revoke execute on procedure stg_mystore.sp_stage_store_sale(date, date) from public;
grant execute on procedure stg_mystore.sp_stage_store_sale(date, date) to role mystore_etl;
