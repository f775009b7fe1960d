"""Exports: the FHIR bulk export's job runner and the full export of an organization.

- :mod:`.files`: writing files while counting and hashing them (memory stays flat);
- :mod:`.fhir`: FHIR NDJSON, one file per resource type, streamed from
  :func:`glabella.interop.fhir.resources.iter_resources`;
- :mod:`.tables`: every organization-scoped table as CSV, all columns but secrets;
- :mod:`.full`: the full export directory (FHIR, import CSVs, tables, photos, signed records,
  consents) and its ``manifest.json``; :func:`.full.verify` re-checks it;
- :mod:`.jobs`: the background jobs behind ``$export`` and the owner's download page;
- :mod:`.zipstream`: a ZIP of a directory, streamed as it is made.
"""
