"""The Airflow Asset every committed corpus version updates; light enough for DAG files."""

from airflow.sdk import Asset

CORPUS_VERSIONS = Asset(name="corpus-versions", uri="corpus://versions")
