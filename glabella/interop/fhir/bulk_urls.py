"""FHIR Bulk Data export ($export kick-off, status, files): to be filled in."""

urlpatterns: list = []
