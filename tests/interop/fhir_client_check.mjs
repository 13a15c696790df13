// tests/interop/fhir_client_check.mjs
//
// fhir-kit-client against lab-bridge's FHIR facade: capability statement,
// reads, every search parameter, create ServiceRequest, and the errors.
// Writes every resource and Bundle it received into OUTDIR (for
// @medplum/core validation by mapping_v2fhir/validate_fhir.mjs) and exits 1
// on the first failed expectation.
//
//   node interop/fhir_client_check.mjs BASEURL TOKEN OUTDIR
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'fhir-kit-client';

const [baseUrl, token, outDir] = process.argv.slice(2);
const client = new Client({ baseUrl, customHeaders: { Authorization: `Bearer ${token}` } });
const anonymous = new Client({ baseUrl });
let saved = 0;
const keep = (name, resource) => {
  fs.writeFileSync(path.join(outDir, `${String(++saved).padStart(2, '0')}-${name}.json`),
                   JSON.stringify(resource));
  return resource;
};
const expect = (cond, what) => {
  if (!cond) {
    console.error(`FAIL: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
};
const expectError = async (promise, status, code, what) => {
  try {
    await promise;
  } catch (e) {
    const body = e.response && e.response.data;
    keep('error', body);
    expect(e.response.status === status && body.resourceType === 'OperationOutcome' &&
           body.issue[0].code === code, `${what} -> ${status} OperationOutcome ${code}`);
    return;
  }
  expect(false, `${what} should fail`);
};

const cap = keep('metadata', await client.capabilityStatement());
expect(cap.resourceType === 'CapabilityStatement' && cap.fhirVersion === '4.0.1', 'metadata');
expect(cap.rest[0].resource.some((r) => r.type === 'AuditEvent') && !cap.rest[0].security.service,
       'metadata lists AuditEvent and claims no OAuth');

const search = async (resourceType, searchParams, what) =>
  keep(`search-${resourceType}`, await client.search({ resourceType, searchParams }));
let b = await search('Observation', { patient: 'Patient/12345' }, 'patient');
expect(b.type === 'searchset' && b.total === 5, 'Observation?patient=Patient/12345 -> 5');
b = await search('Observation', { subject: '12345' });
expect(b.total === 5, 'Observation?subject=12345 -> 5');
b = await search('Observation', { patient: '12345', code: 'http://loinc.org|2823-3' });
expect(b.total === 1 && b.entry[0].resource.valueQuantity.value === 6.8,
       'Observation?code=http://loinc.org|2823-3 -> potassium 6.8');
b = await search('Observation', { patient: '12345', date: 'ge2026-02-21' });
expect(b.total === 5, 'Observation?date=ge2026-02-21 -> 5');
b = await search('Observation', { patient: '12345', date: 'lt2026-02-21' });
expect(b.total === 0, 'Observation?date=lt2026-02-21 -> 0');
b = await search('Observation', { patient: '12345', category: 'laboratory', status: 'final' });
expect(b.total === 5, 'Observation?category=laboratory&status=final -> 5');
b = await search('Observation', { patient: '12345', _count: 2 });
const next = b.link.find((l) => l.relation === 'next');
expect(b.entry.length === 2 && next, 'Observation?_count=2 -> 2 and a next link');
const page2 = keep('page2', await client.nextPage({ bundle: b }));
expect(page2.entry.length === 2, 'next page -> 2 more');

b = await search('DiagnosticReport', { patient: '12345', _include: 'DiagnosticReport:result' });
expect(b.total === 1 && b.entry.length === 6 &&
       b.entry.filter((e) => e.search.mode === 'include' && e.resource.resourceType === 'Observation').length === 5,
       'DiagnosticReport?patient=12345&_include=DiagnosticReport:result -> 1 match + 5 Observations');
b = await search('DiagnosticReport', { code: 'http://loinc.org|58410-2', status: 'final', date: 'ge2026-02-21', patient: '12345' });
expect(b.total === 1 && b.entry.length === 1, 'DiagnosticReport?code&status&date -> 1');
b = await search('Observation', { patient: '12345', _lastUpdated: 'ge2000-01-01' });
expect(b.total === 5, 'Observation?_lastUpdated=ge2000-01-01 -> 5');
b = await search('Observation', { patient: '12345', _lastUpdated: 'lt2000-01-01T00:00:00Z' });
expect(b.total === 0, 'Observation?_lastUpdated=lt2000-01-01T00:00:00Z -> 0');
b = await search('Patient', { identifier: '12345' });
expect(b.total === 1 && b.entry[0].resource.id === '12345', 'Patient?identifier=12345 -> Patient/12345');
b = await search('Patient', { identifier: 'urn:lab-bridge:patient:MPS_PMS|12345' });
expect(b.total === 1, 'Patient?identifier=system|12345 -> 1');
b = await search('Patient', { identifier: 'urn:other|12345' });
expect(b.total === 0, 'Patient?identifier=urn:other|12345 -> 0');
b = await search('Patient', { name: 'doe' });
expect(b.total === 1 && b.entry[0].resource.name[0].family === 'Doe', 'Patient?name=doe -> Doe');
b = await search('Patient', { name: 'JAN' });
expect(b.total === 1, 'Patient?name=JAN (given, any case) -> 1');
b = await search('Patient', { name: 'zzz' });
expect(b.total === 0, 'Patient?name=zzz -> 0');
b = await search('Patient', { birthdate: '1990-03-15' });
expect(b.total === 1, 'Patient?birthdate=1990-03-15 -> 1');
b = await search('Patient', { birthdate: 'ge1991' });
expect(b.total === 0, 'Patient?birthdate=ge1991 -> 0');
b = await search('Observation', { patient: '12345', _count: 2 });
const id = b.entry[0].resource.id;
const obs = keep('read', await client.read({ resourceType: 'Observation', id }));
expect(obs.id === id && obs.meta.versionId, `read Observation/${id}`);
const patient = keep('patient', await client.read({ resourceType: 'Patient', id: '12345' }));
expect(patient.resourceType === 'Patient', 'read Patient/12345');
const v = keep('vread', await client.vread({ resourceType: 'Observation', id, version: obs.meta.versionId }));
expect(v.id === id, 'vread current version');

const created = keep('created', await client.create({
  resourceType: 'ServiceRequest',
  body: {
    resourceType: 'ServiceRequest', status: 'active', intent: 'order', priority: 'routine',
    code: { coding: [{ system: 'http://loinc.org', code: '58410-2', display: 'CBC panel' }] },
    subject: { reference: '#p' },
    contained: [{ resourceType: 'Patient', id: 'p',
                  identifier: [{ type: { coding: [{ code: 'MR' }] }, value: '12345' }] }],
    requester: { display: 'Dr. Smith' },
  },
}));
expect(created.resourceType === 'ServiceRequest' && created.status === 'active', 'create ServiceRequest');
// A transaction Bundle as FHIR clients build one: urn:uuid fullUrls, and a
// new ServiceRequest without id or identifier.
const fromBundle = keep('created-from-bundle', await client.create({
  resourceType: 'ServiceRequest',
  body: {
    resourceType: 'Bundle', type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:6f1d2c3b-4a59-4e8f-9a1b-2c3d4e5f6a7b',
        resource: { resourceType: 'ServiceRequest', status: 'active', intent: 'order',
                    code: { coding: [{ system: 'http://loinc.org', code: '58410-2', display: 'CBC panel' }] },
                    subject: { reference: 'urn:uuid:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' } },
        request: { method: 'POST', url: 'ServiceRequest' } },
      { fullUrl: 'urn:uuid:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
        resource: { resourceType: 'Patient',
                    identifier: [{ type: { coding: [{ code: 'MR' }] }, value: '12345' }] },
        request: { method: 'POST', url: 'Patient' } },
    ],
  },
}));
expect(fromBundle.resourceType === 'ServiceRequest' && fromBundle.id !== created.id &&
       fromBundle.subject.identifier.value === '12345', 'create ServiceRequest from a transaction Bundle');
const reread = keep('sr', await client.read({ resourceType: 'ServiceRequest', id: created.id }));
expect(reread.id === created.id, `read ServiceRequest/${created.id}`);
const placer = created.identifier.find((i) => i.type.coding[0].code === 'PLAC');
b = await search('ServiceRequest', { identifier: `${placer.system}|${placer.value}` });
expect(b.total === 1 && b.entry[0].resource.id === created.id,
       `ServiceRequest?identifier=${placer.system}|${placer.value} -> ${created.id}`);
b = await search('ServiceRequest', { identifier: placer.value, status: 'revoked' });
expect(b.total === 0, 'ServiceRequest?identifier&status=revoked -> 0');

const audit = keep('audit', await client.search({ resourceType: 'AuditEvent', searchParams: { patient: '12345', _count: 5 } }));
expect(audit.entry.length === 5 && audit.entry.every((e) => e.resource.resourceType === 'AuditEvent'),
       'AuditEvent?patient=12345 -> the access audit of that patient');
await expectError(anonymous.search({ resourceType: 'AuditEvent', searchParams: {} }), 401, 'security', 'AuditEvent without a token');
await expectError(client.read({ resourceType: 'Observation', id: 'missing' }), 404, 'not-found', 'read missing');
await expectError(anonymous.search({ resourceType: 'Observation', searchParams: {} }), 401, 'security', 'no token');
await expectError(client.search({ resourceType: 'Observation', searchParams: { _count: 0 } }), 400, 'invalid', '_count=0');
await expectError(client.search({ resourceType: 'Observation', searchParams: { _lastUpdated: 'yesterday' } }),
                  400, 'invalid', '_lastUpdated=yesterday');
await expectError(client.search({ resourceType: 'Observation', searchParams: { _include: 'Observation:subject' } }),
                  400, 'not-supported', 'unsupported _include');
await expectError(client.create({ resourceType: 'ServiceRequest', body: { resourceType: 'ServiceRequest' } }),
                  422, 'invalid', 'create without subject');
console.log(`all checks passed; ${saved} JSON files in ${outDir}`);
