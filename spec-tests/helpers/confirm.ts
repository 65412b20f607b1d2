/** Waiting until a client has confirmed its handshake, before a close. */
import type { QuicServer, QuicTransport, QuicTransportOptions } from '../../lib/index.js';
import { connectPair, nextIncoming, readAll, within, writeText } from './pair.js';

/**
 * Sends one byte from the server's side to the client on a unidirectional stream and waits for
 * it: once it is read, the client has processed the server's 1-RTT packets, HANDSHAKE_DONE
 * among them. A client closed before that can, under load, never get its close out (quiche
 * 0.30 then ignores every packet and only sends Handshake probes) and keep its socket open
 * until `maxIdleTimeout`; tests that close right after `ready` call this first.
 */
export async function confirmHandshake(client: QuicTransport, session: QuicTransport): Promise<void> {
  await writeText(await session.createUnidirectionalStream(), '.');
  await within(5000, readAll(await nextIncoming(client.incomingUnidirectionalStreams)), 'confirming read');
}

/** `connectPair`, then `confirmHandshake`: a pair whose client can be closed at any time. */
export async function connectConfirmed(
  server: QuicServer,
  options: QuicTransportOptions = {},
): Promise<{ client: QuicTransport; session: QuicTransport }> {
  const pair = await connectPair(server, options);
  await confirmHandshake(pair.client, pair.session);
  return pair;
}
