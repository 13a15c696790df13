// Sends HL7 v2 messages to an MLLP server with node-hl7-client (a third-party
// peer), one at a time on one connection, each after the previous ACK, and
// prints one JSON line per ACK: {"i": index, "code": MSA-1, "acked": MSA-2}.
// Prints {"error": ...} and exits 2 when an ACK does not come in time.
//
// Usage: node node_hl7_send.mjs PORT MESSAGES_JSON [CA_FILE [CERT_FILE KEY_FILE]]
// MESSAGES_JSON holds an array of message texts (segments separated by \r).
// With CA_FILE the connection uses TLS and verifies the server as "localhost";
// CERT_FILE/KEY_FILE add a client certificate (mutual TLS).
// node_modules is found by walking up from this file (tests/node_modules).
import { readFileSync } from 'node:fs';
import { Client, Message } from 'node-hl7-client';

const port = Number(process.argv[2]);
const texts = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const [caFile, certFile, keyFile] = process.argv.slice(4);
const tls = caFile ? { ca: [readFileSync(caFile)], servername: 'localhost' } : undefined;
if (tls && certFile) {
  tls.cert = readFileSync(certFile);
  tls.key = readFileSync(keyFile);
}
const client = new Client({ host: '127.0.0.1', ...(tls ? { tls } : {}) });

let next = 0;
let timer;
const arm = () => {
  clearTimeout(timer);
  timer = setTimeout(() => {
    console.log(JSON.stringify({ error: `no ACK for message ${next - 1} within 15 s` }));
    process.exit(2);
  }, 15000);
};

// node-hl7-client 3.2 with waitAck queues a message sent while an ACK is
// pending and flushes that queue only on (re)connect, so each next message is
// sent from the previous ACK's callback.
const outbound = client.createConnection({ port, waitAck: true }, async (res) => {
  const ack = res.getMessage();
  console.log(JSON.stringify({
    i: next - 1,
    code: ack.get('MSA.1').toString(),
    acked: ack.get('MSA.2').toString(),
  }));
  await sendNext();
});

async function sendNext() {
  if (next === texts.length) {
    clearTimeout(timer);
    await outbound.close();
    client.closeAll();
    process.exit(0);
  }
  const text = texts[next];
  next += 1;
  arm();
  await outbound.sendMessage(new Message({ text }));
}

await sendNext();
