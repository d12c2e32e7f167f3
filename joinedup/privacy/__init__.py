"""Privacy duties of the hub: retention (delete what is no longer needed, on a schedule) and the
right to erasure (remove one person everywhere, keep an auditable tombstone).

- :mod:`joinedup.privacy.retention_policy`  the validated retention periods (schemas/retention.yaml)
- :mod:`joinedup.privacy.retention`         what retention deletes, keeps and why; ``apply_retention``
- :mod:`joinedup.privacy.tombstones`        keyed hashes of erased (source, key); the staging refusal
- :mod:`joinedup.privacy.file_redaction`    rewriting landing pages, drop files and reports without a record
- :mod:`joinedup.privacy.erasure`           ``erase``: the whole erasure of one person or source record
"""
