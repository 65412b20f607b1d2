/** Native endpoints driven without sockets: datagrams handed from one to the other by the test. */
import { native } from '../../lib/native.js';
import { clientOptions, serverOptions } from '../../lib/options.js';

export type Endpoint = InstanceType<typeof native.BindingEndpoint>;

export const SERVER = { host: '127.0.0.1', port: 4433 };
export const CLIENT = { host: '127.0.0.1', port: 50_000 };
/** Packets one `send` call can hand out (as lib/endpoint.ts's batch). */
export const BATCH = 64;

/** A server endpoint, and a client endpoint with one connection to it (not yet sent). */
export function endpoints(): { server: Endpoint; client: Endpoint; handle: number } {
  const server = new native.BindingEndpoint(serverOptions({ protocols: ['t'] }).binding);
  server.setLocalAddress(SERVER.host, SERVER.port);
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
