"""FHIR Bulk Data export: kick-off, status, files (included by fhir/urls.py at the base)."""

from django.urls import path

from glabella.interop.fhir import bulk

urlpatterns = [
    path("$export", bulk.export_system, name="bulk_export"),
    path("Patient/$export", bulk.export_patient, name="bulk_export_patient"),
    path("bulk-status/<int:job_id>", bulk.status, name="bulk_status"),
    path("bulk-files/<int:job_id>/<str:name>", bulk.output_file, name="bulk_file"),
]
