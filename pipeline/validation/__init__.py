"""Metadata checks on partner manifest records, run as a Great Expectations suite.

Great Expectations (and pandas) are imported only when `validate_records` runs: importing this
package costs nothing, so DAG parsing stays light.
"""

from pipeline.validation.metadata import (
    COLUMNS,
    SUITE_NAME,
    MetadataReport,
    default_suite_path,
    flatten,
    suite_hash,
    validate_records,
)

__all__ = [
    "COLUMNS",
    "SUITE_NAME",
    "MetadataReport",
    "default_suite_path",
    "flatten",
    "suite_hash",
    "validate_records",
]
