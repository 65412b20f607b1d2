/** How the quichex workers connect, and one echo on a new stream (see web-streams.ts for the rest). */
import { randomBytes } from 'node:crypto';
import { QuicTransport } from './quichex.js';
import { ECHO_SIZE } from './common.js';
import { roundTrip } from './web-streams.js';

const message = randomBytes(ECHO_SIZE);

/**
 * Opens a bidirectional stream, sends ECHO_SIZE bytes and reads them back; then finishes the
 * stream without waiting, so that the echo is all that is timed.
 */
export async function echoOnce(transport: QuicTransport): Promise<void> {
  const { readable, writable } = await transport.createBidirectionalStream();
  const writer = writable.getWriter();
  const reader = readable.getReader();
  await roundTrip(writer, reader, message);
  writer.close().catch(() => {});
  reader.releaseLock();
}

/** Options of `connect`. */
export interface ConnectOptions {
  port: number | string;
  /** The server's certificate hash in hex, which the client pins. */
  hash: string;
  /** maxIdleTimeout in milliseconds, if not the default. */
  idle?: number;
}

/** A client session to the bench server on 127.0.0.1, pinned to its certificate hash. */
export function connect({ port, hash, idle }: ConnectOptions): QuicTransport {
  return new QuicTransport(`quic://127.0.0.1:${port}`, {
    protocols: ['bench'],
    serverCertificateHashes: [{ algorithm: 'sha-256', value: Buffer.from(hash, 'hex') }],
    ...(idle ? { maxIdleTimeout: idle } : {}),
  });
}
