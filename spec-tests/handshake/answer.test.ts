/**
 * The binding's contract for a server's handshake answer, driven sans-IO (no sockets): the
 * datagram that completes a client's ClientHello makes `recv` return RECV_ANSWER, once, and
 * `send(…, true)` then hands out that connection's handshake flight and nothing else, so that
 * the pump can send it before it handles the rest of the turn (lib/endpoint.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ev, native } from '../../lib/native.js';
import { CLIENT, SERVER, endpoints, sendOnce, type Endpoint } from '../helpers/sans-io.js';

/** The datagrams one `send` call hands out. */
function sendAll(endpoint: Endpoint, answers: boolean): Buffer[] {
  return sendOnce(endpoint, answers).datagrams;
}

test("the datagram that completes a ClientHello asks for the server's answer at once, once", () => {
  const { server, client, handle } = endpoints();
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
