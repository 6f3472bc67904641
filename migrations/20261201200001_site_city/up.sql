-- Sites gain the city they are in: optional, filled by the ClinicalTrials.gov import and
-- used in the FHIR export (`Location.address.city`). The length limit mirrors the API's.
ALTER TABLE sites ADD COLUMN city text CHECK (length(city) BETWEEN 1 AND 200);
