// tests/interop/grpc_client_check.mjs
//
// @grpc/grpc-js + @grpc/proto-loader against lab-bridge's gRPC server: every
// LabBridge RPC, auth (no token, wrong token, missing role), the standard
// health service and server reflection (grpc-js-reflection-client).
//
//   node interop/grpc_client_check.mjs HOST:PORT ADMIN_TOKEN READER_TOKEN PROTO_DIR SERVER_PID [PKI_DIR]
// (SIGUSR1 to SERVER_PID stores five more results for patient 12345.)
// With WRITER_TOKEN (orders:write only, none of the read roles) set, every
// read RPC and WatchResults must refuse it with PERMISSION_DENIED.
// With PKI_DIR (ca.crt, pms.crt/.key, stranger.crt/.key from another CA,
// other-ca.crt), the server runs mutual TLS: the checks then cover TLS
// (health, reflection, a unary call and a stream over it) and the clients it
// must refuse.
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { GrpcReflection } from 'grpc-js-reflection-client';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [addr, adminToken, readerToken, protoDir, serverPid, pkiDir] = process.argv.slice(2);
const load = (file, includeDirs) =>
  grpc.loadPackageDefinition(protoLoader.loadSync(file, { keepCase: true, longs: String, defaults: true, includeDirs }));
const pkg = load('labbridge/v1/labbridge.proto', [protoDir]);
// With PKI_DIR the server runs mutual TLS (GRPC_TLS_CERT/KEY/CLIENT_CA):
// trust its CA and present the PMS backend's certificate.
const pem = (name) => fs.readFileSync(path.join(pkiDir, name));
const credentials = pkiDir
  ? grpc.credentials.createSsl(pem('ca.crt'), pem('pms.key'), pem('pms.crt'))
  : grpc.credentials.createInsecure();
const client = new pkg.labbridge.v1.LabBridge(addr, credentials);

const healthProto = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'health-')), 'health.proto');
fs.writeFileSync(healthProto, `syntax = "proto3"; package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse { enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; } ServingStatus status = 1; }
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }`);
const health = new (load(healthProto).grpc.health.v1.Health)(addr, credentials);

const meta = (token) => {
  const m = new grpc.Metadata();
  if (token) m.set('authorization', `Bearer ${token}`);
  return m;
};
const call = (method, request, token = adminToken) =>
  new Promise((resolve, reject) =>
    client[method](request, meta(token), (err, res) => (err ? reject(err) : resolve(res))));
const expect = (cond, what) => {
  if (!cond) { console.error(`FAIL: ${what}`); process.exit(1); }
  console.log(`ok: ${what}`);
};
const expectCode = async (promise, code, what) => {
  try { await promise; } catch (e) { expect(e.code === code, `${what} -> ${grpc.status[code]} (${e.details})`); return; }
  expect(false, `${what} should fail with ${grpc.status[code]}`);
};

const h = await new Promise((res, rej) => health.Check({ service: '' }, (e, r) => (e ? rej(e) : res(r))));
expect(h.status === 1 || h.status === 'SERVING', 'grpc.health.v1.Health/Check -> SERVING');
const services = await new GrpcReflection(addr, credentials).listServices();
expect(services.includes('labbridge.v1.LabBridge') && services.includes('grpc.health.v1.Health'),
       `reflection lists ${services.join(', ')}`);

if (pkiDir) {
  const results = await call('ListResults', { patient_id: '12345' });
  expect(results.results.length >= 5 && results.results.some((x) => x.test_code === 'K'),
         'over mutual TLS: ListResults(patient 12345) with the bearer token');
  const events = await new Promise((resolve, reject) => {
    const got = [];
    const stream = client.WatchResults({ patient_id: '12345', after_result_id: '0' }, meta(adminToken));
    stream.on('data', (e) => { got.push(e); if (got.length === 5) { stream.cancel(); resolve(got); } });
    stream.on('error', (e) => (e.code === grpc.status.CANCELLED ? resolve(got) : reject(e)));
  });
  expect(events.length === 5, 'over mutual TLS: WatchResults streams');
  await expectCode(call('ListResults', {}, ''), grpc.status.UNAUTHENTICATED,
                   'over mutual TLS: a client certificate is not a token');
  const refused = async (creds, what) => {
    const other = new pkg.labbridge.v1.LabBridge(addr, creds);
    await expectCode(new Promise((resolve, reject) => other.ListResults(
      {}, meta(adminToken), { deadline: Date.now() + 5000 }, (e, res) => (e ? reject(e) : resolve(res)))),
    grpc.status.UNAVAILABLE, what);
    other.close();
  };
  await refused(grpc.credentials.createInsecure(), 'a plaintext client');
  await refused(grpc.credentials.createSsl(pem('ca.crt')), 'a TLS client without a certificate');
  await refused(grpc.credentials.createSsl(pem('ca.crt'), pem('stranger.key'), pem('stranger.crt')),
                'a client certificate from another CA');
  await refused(grpc.credentials.createSsl(pem('other-ca.crt'), pem('pms.key'), pem('pms.crt')),
                'a client that does not trust the server certificate');
  console.log('all gRPC TLS checks passed');
  process.exit(0);
}

let r = await call('ListResults', { patient_id: '12345' });
expect(r.results.length === 5, 'ListResults(patient 12345) -> 5');
expect(r.results.some((x) => x.test_code === 'K' && x.abnormal_flag === 'HH' && x.critical), 'K HH critical');
r = await call('ListResults', { patient_id: '12345', abnormal_only: true });
expect(r.results.length === 1, 'ListResults(abnormal_only) -> 1');
r = await call('ListResults', { patient_id: '12345', page_size: 2 });
expect(r.results.length === 2 && r.next_page_token, 'ListResults(page_size 2) -> a next page token');
const page2 = await call('ListResults', { patient_id: '12345', page_size: 2, page_token: r.next_page_token });
expect(page2.results.length === 2 && page2.results[0].id !== r.results[0].id, 'second page');
r = await call('ListResults', { patient_id: '12345', observed_from: '2026-02-21', observed_to: '2026-02-22', test_code: 'K' });
expect(r.results.length === 1, 'ListResults(date range, code K) -> 1');
const crit = await call('ListCriticalResults', {});
expect(crit.results.length === 1 && crit.results[0].value === '6.8', 'ListCriticalResults -> potassium 6.8');
const one = await call('GetResult', { id: crit.results[0].id });
expect(one.id === crit.results[0].id && one.patient_id === '12345' && one.value === '6.8', 'GetResult');
await expectCode(call('GetResult', { id: 987654 }), grpc.status.NOT_FOUND, 'GetResult(987654)');
const ack = await call('AcknowledgeCriticalResult', { id: crit.results[0].id, acknowledged_by: 'Dr. Smith', note: 'called' });
expect(ack.acknowledged_by === 'Dr. Smith' && ack.acknowledged_at, 'AcknowledgeCriticalResult');
expect((await call('ListCriticalResults', {})).results.length === 0, 'no open criticals after the ack');
expect((await call('ListCriticalResults', { include_acknowledged: true })).results.length === 1, 'include_acknowledged');
await expectCode(call('AcknowledgeCriticalResult', { id: crit.results[0].id }), grpc.status.ALREADY_EXISTS, 'second ack');

const order = await call('SubmitOrder', { patient_id: '1', test_codes: ['CBC', 'BMP'], ordering_provider: 'Dr. Smith', priority: 'S' });
expect(order.status === 'pending' && order.test_codes.length === 2, 'SubmitOrder -> pending');
const got = await call('GetOrder', { id: order.id });
expect(got.order.id === order.id && Array.isArray(got.results), 'GetOrder');
const list = await call('ListOrders', { patient_id: '1', status: 'pending' });
expect(list.orders.some((o) => o.id === order.id), 'ListOrders(patient 1, pending)');
const cancelled = await call('CancelOrder', { id: order.id });
expect(cancelled.status === 'cancelled', 'CancelOrder -> cancelled');
await expectCode(call('CancelOrder', { id: order.id }), grpc.status.FAILED_PRECONDITION, 'cancel twice');
await expectCode(call('GetOrder', { id: 999999 }), grpc.status.NOT_FOUND, 'GetOrder(999999)');
await expectCode(call('SubmitOrder', { patient_id: '1', ordering_provider: 'X' }), grpc.status.INVALID_ARGUMENT, 'SubmitOrder without tests');
await expectCode(call('ListResults', { page_size: 5000 }), grpc.status.INVALID_ARGUMENT, 'page_size 5000');

const msgs = await call('ListMessages', {});
expect(msgs.messages.length >= 1 && msgs.messages[0].message_type === 'ORU', 'ListMessages (audit trail)');
const msg = await call('GetMessage', { id: msgs.messages[0].id });
expect(msg.message_control_id === 'MSG001', 'GetMessage -> MSG001');

// Auth on every RPC: no token, a wrong one, a token without the role.
const rpcs = {
  SubmitOrder: [{ patient_id: '1', test_codes: ['CBC'], ordering_provider: 'X' }, false],
  GetOrder: [{ id: order.id }, true],
  ListOrders: [{}, true],
  CancelOrder: [{ id: order.id }, false],
  ListResults: [{}, true],
  GetResult: [{ id: 1 }, true],
  ListCriticalResults: [{}, true],
  AcknowledgeCriticalResult: [{ id: 1 }, false],
  GetMessage: [{ id: 1 }, false],
  ListMessages: [{}, false],
};
for (const [method, [request, readerAllowed]] of Object.entries(rpcs)) {
  await expectCode(call(method, request, ''), grpc.status.UNAUTHENTICATED, `${method} without a token`);
  await expectCode(call(method, request, 'lb_wrong'), grpc.status.UNAUTHENTICATED, `${method} with a wrong token`);
  if (!readerAllowed) {
    await expectCode(call(method, request, readerToken), grpc.status.PERMISSION_DENIED, `${method} without the role`);
  }
}
// A token holding none of the read roles reads nothing.
const writerToken = process.env.WRITER_TOKEN;
if (writerToken) {
  for (const [method, [request, readerAllowed]] of Object.entries(rpcs)) {
    if (readerAllowed || method === 'GetMessage' || method === 'ListMessages') {
      await expectCode(call(method, request, writerToken), grpc.status.PERMISSION_DENIED,
                       `${method} with orders:write only`);
    }
  }
}
// WatchResults: replay from a position, then live results as they are stored.
const watch = (request, token, count) => new Promise((resolve, reject) => {
  const events = [];
  const stream = client.WatchResults(request, meta(token));
  stream.on('data', (e) => {
    events.push(e);
    if (events.length === count) { stream.cancel(); resolve(events); }
  });
  stream.on('error', (e) => (e.code === grpc.status.CANCELLED ? resolve(events) : reject(e)));
});
const replay = await watch({ patient_id: '12345', after_result_id: '0' }, adminToken, 5);
expect(replay.length === 5 && replay.every((e, i) => i === 0 || BigInt(e.position) > BigInt(replay[i - 1].position)),
       'WatchResults replays the 5 stored results in position order');
const last = replay[4].position;
const live = watch({ patient_id: '12345', after_result_id: last }, adminToken, 5);
setTimeout(() => process.kill(Number(serverPid), 'SIGUSR1'), 300);
const arrived = await live;
expect(arrived.length === 5 && arrived.every((e) => BigInt(e.position) > BigInt(last)) &&
       arrived.some((e) => e.result.test_code === 'K' && e.result.critical),
       'WatchResults streams the 5 results stored while it watched');
// A client that reconnects with the last position it saw misses nothing.
const resumed = await watch({ patient_id: '12345', after_result_id: arrived[1].position }, adminToken, 3);
expect(resumed.map((e) => e.position).join() === arrived.slice(2).map((e) => e.position).join(),
       'reconnecting from a position resumes exactly after it');
const critEvents = await watch({ critical_only: true, after_result_id: '0' }, adminToken, 2);
expect(critEvents.length === 2 && critEvents.every((e) => e.result.critical), 'WatchResults critical_only');
await expectCode(watch({}, '', 1), grpc.status.UNAUTHENTICATED, 'WatchResults without a token');
await expectCode(watch({}, 'lb_wrong', 1), grpc.status.UNAUTHENTICATED, 'WatchResults with a wrong token');
if (writerToken) {
  await expectCode(watch({ patient_id: '12345', after_result_id: '0' }, writerToken, 1),
                   grpc.status.PERMISSION_DENIED, 'WatchResults with orders:write only');
}
console.log('all gRPC checks passed');
process.exit(0);
