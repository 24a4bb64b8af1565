-- Checks a load's parameters before anything is read or written, so a wrong call fails
-- with a message that names the bad value and what is allowed.
create or replace procedure stg_mystore.sp_validate_parameters(
    p_load_type varchar,
    p_start_date date,
    p_end_date date
)
as $$
begin
    if p_load_type is null or p_load_type not in ('HISTORY', 'INCREMENTAL') then
        raise exception 'load_type % is not valid: expected HISTORY or INCREMENTAL',
            coalesce('''' || p_load_type || '''', 'NULL');
    end if;
    if p_load_type = 'INCREMENTAL' and (p_start_date is not null or p_end_date is not null) then
        raise exception 'INCREMENTAL loads take no dates (got start_date %, end_date %): they load what is new since the high-water marks',
            coalesce(cast(p_start_date as varchar), 'NULL'),
            coalesce(cast(p_end_date as varchar), 'NULL');
    end if;
    if p_load_type = 'HISTORY' and (p_start_date is null or p_end_date is null) then
        raise exception 'HISTORY loads need both start_date and end_date (got %, %)',
            coalesce(cast(p_start_date as varchar), 'NULL'),
            coalesce(cast(p_end_date as varchar), 'NULL');
    end if;
    if p_load_type = 'HISTORY' and p_start_date > p_end_date then
        raise exception 'start_date % is after end_date %: expected start_date <= end_date',
            p_start_date, p_end_date;
    end if;
end;
$$ language plpgsql;
