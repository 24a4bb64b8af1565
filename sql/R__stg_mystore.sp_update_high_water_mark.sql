-- Advances a source table's high-water mark. A mark never moves backwards, so a rerun
-- with an older mark cannot make the next run load rows twice.
create or replace procedure stg_mystore.sp_update_high_water_mark(
    p_source_table_name varchar,
    p_high_water_mark timestamp
)
as $$
declare
    v_current timestamp;
begin
    if p_high_water_mark is null then
        raise exception 'the new high-water mark for % must not be NULL', p_source_table_name;
    end if;
    call stg_mystore.sp_return_high_water_mark(p_source_table_name, v_current);
    if p_high_water_mark > v_current then
        update stg_mystore.dw_incremental_dates
        set start_date = p_high_water_mark
        where source_table_name = p_source_table_name;
        raise info 'high-water mark of % advanced from % to %',
            p_source_table_name, v_current, p_high_water_mark;
    end if;
end;
$$ language plpgsql;
