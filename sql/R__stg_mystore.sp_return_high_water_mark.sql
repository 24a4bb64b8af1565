-- Returns a source table's high-water mark (the newest etl_processing_datetime loaded).
create or replace procedure stg_mystore.sp_return_high_water_mark(
    p_source_table_name varchar,
    inout p_high_water_mark timestamp
)
as $$
declare
    v_marks integer;
begin
    select count(*), max(start_date) into v_marks, p_high_water_mark
    from stg_mystore.dw_incremental_dates
    where source_table_name = p_source_table_name;
    if v_marks <> 1 then
        raise exception 'no high-water mark for source table %: expected one of store_customer, store_customer_address, store_sale',
            coalesce('''' || p_source_table_name || '''', 'NULL');
    end if;
end;
$$ language plpgsql;
