/**
 * The binding's contract for a server's handshake answer, driven sans-IO (no sockets): the
 * datagram that completes a client's ClientHello makes `recv` return RECV_ANSWER, once, and
 * `send(…, true)` then hands out that connection's handshake flight and nothing else, so that
 * the pump can send it before it handles the rest of the turn (lib/endpoint.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ev, native } from '../../lib/native.js';
import { clientOptions, serverOptions } from '../../lib/options.js';

const SERVER = { host: '127.0.0.1', port: 4433 };
const CLIENT = { host: '127.0.0.1', port: 50_000 };

/** The datagrams one `send` call hands out. */
function sendAll(endpoint: InstanceType<typeof native.BindingEndpoint>, answers: boolean): Buffer[] {
  const out = Buffer.alloc(1500 * 64);
  const meta = new Uint32Array(128);
  const n = endpoint.send(out, meta, answers);
  const datagrams: Buffer[] = [];
  for (let i = 0, off = 0; i < n; off += meta[i * 2], i++)
    datagrams.push(Buffer.from(out.subarray(off, off + meta[i * 2])));
  return datagrams;
}

test("the datagram that completes a ClientHello asks for the server's answer at once, once", () => {
  const server = new native.BindingEndpoint(serverOptions({ protocols: ['t'] }).binding);
  server.setLocalAddress(SERVER.host, SERVER.port);
  const client = new native.BindingEndpoint(
    clientOptions({ protocols: ['t'], dangerouslyAcceptAnyCertificate: true }, SERVER.host).binding,
  );
  client.setLocalAddress(CLIENT.host, CLIENT.port);
  const handle = client.connect(null, SERVER.host, SERVER.port);
  const reply = Buffer.alloc(1500);

  // The ClientHello (with its post-quantum key share) may take more than one Initial datagram.
  const hello = sendAll(client, false);
  assert.ok(hello.length >= 1);
  const results = hello.map((d) => server.recv(d, CLIENT.host, CLIENT.port, reply));
  assert.deepEqual(results, [...hello.slice(1).map(() => 0), native.RECV_ANSWER]);

  // The answer: the server's Initial and Handshake flight, which establishes the client.
  const answer = sendAll(server, true);
  assert.ok(answer.length >= 1);
  assert.deepEqual(sendAll(server, true), [], 'answered once');
  for (const d of answer) assert.equal(client.recv(d, SERVER.host, SERVER.port, reply), 0);
  const events = new Float64Array(3 * 16);
  const n = client.pollEvents(events);
  const kinds = Array.from({ length: n }, (_, i) => [events[i * 3], events[i * 3 + 1]]);
  assert.ok(
    kinds.some(([kind, h]) => kind === Ev.Established && h === handle),
    `client events ${JSON.stringify(kinds)}`,
  );

  // A copy of the last ClientHello datagram (a retransmission) asks for nothing more.
  assert.equal(server.recv(hello[hello.length - 1], CLIENT.host, CLIENT.port, reply), 0);
});
