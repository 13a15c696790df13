-- An order's linked results say whether it is preliminary or final
-- (StoredOrder::result_status, read with every order): finding them must not
-- walk every result. Partial, so unlinked results cost no index entry.
CREATE INDEX lab_results_order ON lab_results (lab_order_id, id)
  WHERE lab_order_id IS NOT NULL;
