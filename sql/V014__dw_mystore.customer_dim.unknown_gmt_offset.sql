-- The unknown member's gmt_offset is -999, as in the original design: -1 is a real UTC
-- offset. Rows loaded before this change keep the -1 they got for a missing address.
update dw_mystore.customer_dim
set gmt_offset = -999
where customer_key = -1;
