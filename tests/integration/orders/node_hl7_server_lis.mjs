// tests/integration/orders/node_hl7_server_lis.mjs
//
// A laboratory system on node-hl7-server (npm) over mutual TLS, bound to
// 127.0.0.1: it requires a client certificate from CA_PEM, answers every
// message AA, and appends each one to RECORD as a JSON line.
//
//   node node_hl7_server_lis.mjs PORT RECORD KEY_PEM CERT_PEM CA_PEM
import fs from 'node:fs';
import { Server } from 'node-hl7-server';

const [port, record, keyPath, certPath, caPath] = process.argv.slice(2);
const server = new Server({
  bindAddress: '127.0.0.1',
  tls: {
    key: fs.readFileSync(keyPath),
    cert: fs.readFileSync(certPath),
    ca: [fs.readFileSync(caPath)],
    requestCert: true,
  },
});
let connection = 0;
server.createInbound({ port: Number(port) }, async (req, res) => {
  const message = req.getMessage();
  fs.appendFileSync(record, JSON.stringify({
    control_id: message.get('MSH.10').toString(),
    raw: message.toString(),
    connection: connection++,
    time: Date.now() / 1000,
  }) + '\n');
  await res.sendResponse('AA');
});
process.on('SIGTERM', () => process.exit(0));
