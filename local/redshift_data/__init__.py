"""The Redshift Data API over the local warehouse (see docs/local.md).

Laid out as moto lays out a service: ``urls.py`` (where it is served), ``responses.py``
(the HTTP mapping), ``requests.py`` (rules the botocore model cannot express),
``models.py`` (the backend), ``exceptions.py``; statements are kept by ``store.py`` /
``schema.py`` (written through ``durable_status.py``), run by ``executor.py`` (its SQL and
result pages by ``result_fetch.py``), encoded by ``encoding.py``, bound by ``params.py``.
"""

from local.redshift_data.models import RedshiftDataBackend
from local.redshift_data.responses import RedshiftDataService
from local.redshift_data.urls import serve_redshift_data

__all__ = ["RedshiftDataBackend", "RedshiftDataService", "serve_redshift_data"]
