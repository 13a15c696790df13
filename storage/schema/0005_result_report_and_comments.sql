-- The dashboard groups results by report (one OBR) and shows the lab's NTE
-- comments: OBR-4 (the panel ordered) and the NTE-3 lines after each OBX were
-- only in the FHIR resources. comments is a JSON array of strings, like
-- lab_orders.test_codes.
ALTER TABLE lab_results ADD COLUMN report_code TEXT;
ALTER TABLE lab_results ADD COLUMN report_name TEXT;
ALTER TABLE lab_results ADD COLUMN comments TEXT;
