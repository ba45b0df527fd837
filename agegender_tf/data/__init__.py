"""The data layer: readers (one per dataset) -> manifest, label policies, audits and splits."""

from agegender_tf.data.manifest import MANIFEST_COLUMNS, ReadResult, validate_manifest
from agegender_tf.data.readers import available, read_dataset

__all__ = ["MANIFEST_COLUMNS", "ReadResult", "available", "read_dataset", "validate_manifest"]
