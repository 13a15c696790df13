// Sends COUNT messages to an MLLP server with node-hl7-client (a third-party
// peer) and prints one line per ACK: "ACK <MSA-1> <MSA-2>".
// Usage: node node_hl7_client_send.mjs PORT COUNT [CA_FILE [CERT_FILE KEY_FILE]]
// With CA_FILE the connection uses TLS and verifies the server as "localhost";
// CERT_FILE/KEY_FILE add a client certificate (mutual TLS).
// Module resolution: node_modules is found by walking up from this file
// (tests/node_modules, installed by `npm ci` in tests/).
import { readFileSync } from 'node:fs';
import { Client, Message } from 'node-hl7-client';

const [port, count] = [Number(process.argv[2]), Number(process.argv[3])];
const [caFile, certFile, keyFile] = process.argv.slice(4);
const tls = caFile ? { ca: [readFileSync(caFile)], servername: 'localhost' } : undefined;
if (tls && certFile) {
  tls.cert = readFileSync(certFile);
  tls.key = readFileSync(keyFile);
}
const client = new Client({ host: '127.0.0.1', ...(tls ? { tls } : {}) });

// node-hl7-client 3.2 with waitAck queues a message sent while an ACK is
// pending and flushes that queue only on (re)connect, so each next message is
// sent from the previous ACK's callback.
const messageText = (i) =>
  'MSH|^~\\&|NODELAB|NODEFAC|BRIDGE|CLINIC|20240101120000||ORU^R01|NODE-' + i + '|P|2.5\r' +
  'PID|1||12345^^^MPS_PMS^MR||DOE^JANE\r' +
  'OBX|1|NM|K^Potassium||4.1|mmol/L||N';

let received = 0;
const timer = setTimeout(() => {
  console.log(`TIMEOUT after ${received} ACKs`);
  process.exit(2);
}, 15000);

const outbound = client.createConnection({ port, waitAck: true }, async (res) => {
  const msg = res.getMessage();
  console.log(`ACK ${msg.get('MSA.1').toString()} ${msg.get('MSA.2').toString()}`);
  received += 1;
  if (received === count) {
    clearTimeout(timer);
    await outbound.close();
    client.closeAll();
    process.exit(0);
  }
  await outbound.sendMessage(new Message({ text: messageText(received + 1) }));
});

await outbound.sendMessage(new Message({ text: messageText(1) }));

