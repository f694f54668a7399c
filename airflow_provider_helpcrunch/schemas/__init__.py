"""JSON Schemas of the export streams' records, one file per stream and version."""
