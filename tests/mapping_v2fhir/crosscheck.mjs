// Cross-checks lab-bridge Bundles against other converters' expected output
// (the corpus's .expected.json files) on clinically meaningful content:
// number of Observations, their codes, values, units, interpretations,
// statuses, and the patient identifiers.
//
//   node mapping_v2fhir/crosscheck.mjs PAIRS_FILE DECISIONS_MD
//
// PAIRS_FILE: lines "name<TAB>ours.json<TAB>expected.json". Each difference
// has a key "<name>/<aspect>"; it is accepted only when docs/mapping-decisions.md
// lists that key (or "*/<aspect>") in the first column of a table row, in
// backquotes, with its reason. Exits 1 listing every unlisted difference.
import fs from 'node:fs';

const [pairsFile, decisionsFile] = process.argv.slice(2);
const allowed = new Set();
for (const line of fs.readFileSync(decisionsFile, 'utf8').split('\n')) {
  const m = line.match(/^\|\s*`([^`]+\/[a-z-]+)`\s*\|/);
  if (m) allowed.add(m[1]);
}

function resources(bundle) {
  return (bundle.entry || []).map((e) => e.resource).filter(Boolean);
}
function firstCode(cc) {
  if (!cc) return '';
  const c = (cc.coding || []).find((x) => x.code);
  return c ? String(c.code) : cc.text || '';
}
function num(v) {
  return v === undefined || v === null ? '' : String(Number(v));
}
function valueOf(o) {
  if (o.valueQuantity) return `Q:${o.valueQuantity.comparator || ''}${num(o.valueQuantity.value)}`;
  if (o.valueString !== undefined) return `S:${String(o.valueString).trim()}`;
  if (o.valueCodeableConcept) return `C:${firstCode(o.valueCodeableConcept)}`;
  if (o.valueDateTime) return `DT:${o.valueDateTime}`;
  if (o.valueTime) return `T:${o.valueTime}`;
  if (o.valueRange) return `R:${num(o.valueRange.low?.value)}-${num(o.valueRange.high?.value)}`;
  if (o.valueRatio) return `RA:${num(o.valueRatio.numerator?.value)}/${num(o.valueRatio.denominator?.value)}`;
  if (o.valuePeriod) return `P:${o.valuePeriod.start || ''}/${o.valuePeriod.end || ''}`;
  if (o.valueInteger !== undefined) return `Q:${num(o.valueInteger)}`;
  if (o.valueBoolean !== undefined) return `B:${o.valueBoolean}`;
  if (o.component) return `COMP:${o.component.length}`;
  return '';
}
function unitOf(o) {
  const q = o.valueQuantity || o.valueRange?.low || o.valueRatio?.numerator;
  return q ? q.code || q.unit || '' : '';
}
function summary(bundle) {
  const all = resources(bundle);
  const obs = all.filter((r) => r.resourceType === 'Observation').map((o) => ({
    code: firstCode(o.code),
    value: valueOf(o),
    unit: unitOf(o),
    interpretation: (o.interpretation || []).map(firstCode).sort().join(','),
    status: o.status || '',
  }));
  const ids = new Set();
  for (const p of all.filter((r) => r.resourceType === 'Patient')) {
    for (const id of p.identifier || []) if (id.value) ids.add(String(id.value));
  }
  return { obs, ids };
}

let unlisted = 0;
const seen = new Set();
for (const line of fs.readFileSync(pairsFile, 'utf8').split('\n').filter(Boolean)) {
  const [name, oursPath, expectedPath] = line.split('\t');
  const oursJson = JSON.parse(fs.readFileSync(oursPath, 'utf8'));
  const ours = summary(oursJson);
  const exp = summary(JSON.parse(fs.readFileSync(expectedPath, 'utf8')));
  const diffs = [];
  const add = (aspect, detail) => diffs.push({ key: `${name}/${aspect}`, aspect, detail });
  if (oursJson.refused) add('refused', 'lab-bridge refused the message (no OBR: ACK AE)');
  if (ours.obs.length !== exp.obs.length) {
    add('count', `Observations: ours ${ours.obs.length}, expected ${exp.obs.length}`);
  }
  // Pair Observations by code, in order of appearance.
  const byCode = new Map();
  exp.obs.forEach((o) => {
    if (!byCode.has(o.code)) byCode.set(o.code, []);
    byCode.get(o.code).push(o);
  });
  for (const o of ours.obs) {
    const list = byCode.get(o.code);
    if (!list || list.length === 0) {
      add('code', `ours has ${o.code || '(no code)'} which the expected output lacks`);
      continue;
    }
    const e = list.shift();
    for (const aspect of ['value', 'unit', 'interpretation', 'status']) {
      if (o[aspect] !== e[aspect]) {
        add(aspect, `${o.code}: ours "${o[aspect]}", expected "${e[aspect]}"`);
      }
    }
  }
  for (const [code, rest] of byCode) {
    for (let i = 0; i < rest.length; i++) add('code', `expected has ${code || '(no code)'} which ours lacks`);
  }
  for (const id of exp.ids) {
    if (!ours.ids.has(id)) add('patient-identifier', `expected patient identifier ${id} missing`);
  }
  for (const d of diffs) {
    const ok = allowed.has(d.key) || allowed.has(`*/${d.aspect}`);
    seen.add(d.key);
    console.log(`${ok ? 'documented' : 'UNLISTED  '} ${d.key}: ${d.detail}`);
    if (!ok) unlisted++;
  }
  if (diffs.length === 0) console.log(`same       ${name}`);
}
for (const key of allowed) {
  if (!key.startsWith('*/') && !seen.has(key)) console.log(`note: ${key} is listed but no longer differs`);
}
console.log(unlisted === 0 ? 'cross-check: no unlisted differences' : `cross-check: ${unlisted} unlisted differences`);
process.exit(unlisted === 0 ? 0 : 1);
