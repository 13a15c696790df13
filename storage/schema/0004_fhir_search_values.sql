-- FHIR search parameters that take several values per resource (Patient
-- identifier, name and birthdate; ServiceRequest identifier), one row per
-- value, replaced whenever the resource is stored (FhirResourceRecord::
-- search_values). Names are stored lower-cased for the prefix match.
-- Resources stored before this migration have no rows here until stored again.
CREATE TABLE fhir_search_values (
  resource_type TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  name TEXT NOT NULL,
  system TEXT,
  value TEXT NOT NULL
);
CREATE INDEX fhir_search_values_lookup
  ON fhir_search_values (resource_type, name, value, resource_id);
CREATE INDEX fhir_search_values_resource ON fhir_search_values (resource_type, resource_id);
-- _lastUpdated ranges without a patient (e.g. "what changed since 06:00").
CREATE INDEX fhir_resources_last_updated ON fhir_resources (resource_type, last_updated, id);
