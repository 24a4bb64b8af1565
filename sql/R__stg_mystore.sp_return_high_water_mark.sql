-- Returns a source table's high-water mark (the newest etl_processing_datetime loaded).
-- A source table without a mark gets one at 1900-01-01 (load everything), as in the
-- original design, so adding a source needs no hand-made row.
create or replace procedure stg_mystore.sp_return_high_water_mark(
    p_source_table_name varchar,
    inout p_high_water_mark timestamp
)
as $$
declare
    v_marks integer;
begin
    if p_source_table_name is null then
        raise exception 'source table name is NULL: expected a table name such as store_sale';
    end if;
    select count(*), max(start_date) into v_marks, p_high_water_mark
    from stg_mystore.dw_incremental_dates
    where source_table_name = p_source_table_name;
    if v_marks = 0 then
        p_high_water_mark := cast('1900-01-01 00:00:00' as timestamp);
        insert into stg_mystore.dw_incremental_dates (source_table_name, start_date)
        values (p_source_table_name, p_high_water_mark);
        raise info 'high-water mark of % created at %', p_source_table_name, p_high_water_mark;
    end if;
end;
$$ language plpgsql;
