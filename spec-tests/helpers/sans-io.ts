/** Native endpoints driven without sockets: datagrams handed from one to the other by the test. */
import assert from 'node:assert/strict';
import { Ev, native } from '../../lib/native.js';
import { clientOptions, serverOptions, type QuicServerOptions } from '../../lib/options.js';

export type Endpoint = InstanceType<typeof native.BindingEndpoint>;

export const SERVER = { host: '127.0.0.1', port: 4433 };
export const CLIENT = { host: '127.0.0.1', port: 50_000 };
/** Packets one `send` call can hand out (as lib/endpoint.ts's batch). */
export const BATCH = 64;
/** Where `sendOnce`'s meta holds the status words: the events waiting, µs to the next timer. */
export const STATUS_EVENTS = BATCH * 2;
export const STATUS_TIMER = STATUS_EVENTS + 1;

/** A server endpoint with `options` (and protocol `t`), as bound to SERVER. */
export function serverEndpoint(options: QuicServerOptions = {}): Endpoint {
  const server = new native.BindingEndpoint(serverOptions({ protocols: ['t'], ...options }).binding);
  server.setLocalAddress(SERVER.host, SERVER.port);
  return server;
}

/** A server endpoint, and a client endpoint with one connection to it (not yet sent). */
export function endpoints(options: QuicServerOptions = {}): { server: Endpoint; client: Endpoint; handle: number } {
  const server = serverEndpoint(options);
  const client = new native.BindingEndpoint(
    clientOptions({ protocols: ['t'], dangerouslyAcceptAnyCertificate: true }, SERVER.host).binding,
  );
  client.setLocalAddress(CLIENT.host, CLIENT.port);
  const handle = client.connect(null, SERVER.host, SERVER.port);
  return { server, client, handle };
}

/** One `send` call: its datagrams, and the meta array (with the status words after the packets'). */
export function sendOnce(endpoint: Endpoint, answers = false): { datagrams: Buffer[]; meta: Uint32Array } {
  const out = Buffer.alloc(1500 * BATCH);
  const meta = new Uint32Array(BATCH * 2 + native.STATUS_WORDS);
  const n = endpoint.send(out, meta, answers);
  const datagrams: Buffer[] = [];
  for (let i = 0, off = 0; i < n; off += meta[i * 2], i++)
    datagrams.push(Buffer.from(out.subarray(off, off + meta[i * 2])));
  return { datagrams, meta };
}

/** The events waiting, as `[kind, handle, streamId]`. */
export function poll(endpoint: Endpoint): number[][] {
  const events = new Float64Array(3 * 256);
  const n = endpoint.pollEvents(events);
  return Array.from({ length: n }, (_, i) => [events[i * 3], events[i * 3 + 1], events[i * 3 + 2]]);
}

/** Moves datagrams both ways until neither side has anything to send; returns the events seen. */
export function exchange(client: Endpoint, server: Endpoint): { client: number[][]; server: number[][] } {
  const seen = { client: [] as number[][], server: [] as number[][] };
  const reply = Buffer.alloc(1500);
  for (let round = 0; round < 20; round++) {
    const toServer = sendOnce(client).datagrams;
    for (const d of toServer) server.recv(d, CLIENT.host, CLIENT.port, reply);
    seen.server.push(...poll(server));
    const toClient = sendOnce(server).datagrams;
    // As the pump hands them from a client socket connected to its server: without the sender.
    for (const d of toClient) client.recv(d, null, 0, reply);
    seen.client.push(...poll(client));
    if (toServer.length === 0 && toClient.length === 0) return seen;
  }
  throw new Error('the endpoints did not go quiet');
}

/** A client and a server endpoint with one established connection (server options as `endpoints`). */
export function pair(options: QuicServerOptions = {}): {
  client: Endpoint;
  server: Endpoint;
  handle: number;
  serverHandle: number;
} {
  const { server, client, handle } = endpoints(options);
  const seen = exchange(client, server);
  assert.ok(seen.client.some(([kind]) => kind === Ev.Established));
  const accepted = seen.server.find(([kind]) => kind === Ev.New);
  assert.ok(accepted, 'the server accepted the connection');
  return { client, server, handle, serverHandle: accepted[1] };
}
