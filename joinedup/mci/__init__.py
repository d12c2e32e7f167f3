"""The master citizen index: store, standardisation, matching, clusters and golden records."""
