import os  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402

from tests.fixtures.gcs import fake_gcs_server, gcs_uri  # noqa: F401
from tests.fixtures.mongo import (  # noqa: F401
    corpus_env,
    demo_template,
    mongo_server_uri,
    mongo_uri,
)

# Airflow reads AIRFLOW_HOME at import; keep it out of the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")


@pytest.fixture(scope="session")
def airflow_home():
    return os.environ["AIRFLOW_HOME"]
