// tests/integration/orders/order_clients.mjs
//
// Reads one order the way the PMS's other clients do: @grpc/grpc-js
// GetOrder (with the results linked to it) and fhir-kit-client reading
// ServiceRequest/order-<id>. Prints one JSON object on stdout.
//
//   node order_clients.mjs GRPC_PORT HTTP_PORT TOKEN ORDER_ID PROTO_DIR
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { Client } from 'fhir-kit-client';

const [grpcPort, httpPort, token, orderId, protoDir] = process.argv.slice(2);
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync('labbridge/v1/labbridge.proto', {
  keepCase: true, longs: String, defaults: true, includeDirs: [protoDir],
}));
const client = new pkg.labbridge.v1.LabBridge(`127.0.0.1:${grpcPort}`,
  grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
metadata.set('authorization', `Bearer ${token}`);
const grpcOrder = await new Promise((resolve, reject) =>
  client.GetOrder({ id: orderId }, metadata, (err, res) => (err ? reject(err) : resolve(res))));
client.close();

const fhir = new Client({
  baseUrl: `http://127.0.0.1:${httpPort}/fhir`,
  customHeaders: { Authorization: `Bearer ${token}` },
});
const serviceRequest = await fhir.read({ resourceType: 'ServiceRequest', id: `order-${orderId}` });

console.log(JSON.stringify({
  grpc: {
    status: grpcOrder.order.status,
    placer_order_number: grpcOrder.order.placer_order_number,
    attempts: grpcOrder.order.attempts,
    lis_endpoint: grpcOrder.order.lis_endpoint,
    result_status: grpcOrder.order.result_status,
    results: grpcOrder.results.map((r) => ({
      test_code: r.test_code, value: r.value, result_status: r.result_status,
      lab_order_id: r.lab_order_id, placer_order_number: r.placer_order_number,
    })),
  },
  fhir: { resourceType: serviceRequest.resourceType, status: serviceRequest.status },
}));
