-- The clean zone as Redshift Spectrum sees it, through the Glue Data Catalog.
-- ${glue_database} and ${iam_role_arn} are migration parameters: the runner validates
-- them (Glue database name rules, IAM role ARN) and substitutes them as string literals.
-- Locally the dialect adapter creates a plain schema with the contract's clean tables.
create external schema if not exists ext_clean_mystore
from data catalog
database '${glue_database}'
iam_role '${iam_role_arn}';
