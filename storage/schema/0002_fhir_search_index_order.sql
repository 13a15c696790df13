-- FHIR searches are paged in id order (SearchFhirResources: ... ORDER BY id).
-- With (resource_type, patient_reference, date) SQLite answered
-- "Observation?patient=X" by walking the primary key over every Observation
-- (16 ms at 100,000 resources, 177 requests/s under wrk); with id as the
-- last column the index answers the filter and the order together (0.06 ms).
DROP INDEX fhir_resources_patient;
DROP INDEX fhir_resources_code;
CREATE INDEX fhir_resources_patient ON fhir_resources (resource_type, patient_reference, id);
CREATE INDEX fhir_resources_code ON fhir_resources (resource_type, code, id);
