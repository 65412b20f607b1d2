/** What the quichex workers do with streams: send a bulk of bytes, count them, echo once. */
import { randomBytes } from 'node:crypto';
import { QuicTransport } from '../lib/index.js';
import { ECHO_SIZE } from './common.js';

/**
 * Writes `size` bytes to `writable` in `chunk`-sized writes as fast as it takes them, then closes
 * it. Waits on `ready`, not on each write, so that a write is always queued.
 */
export async function writeAll(writable: WritableStream<Uint8Array>, size: number, chunk: Uint8Array): Promise<void> {
  const writer = writable.getWriter();
  for (let sent = 0; sent < size; sent += chunk.byteLength) {
    await writer.ready;
    // Errors surface through `ready` and `close()`; the chunk is never modified, so reuse is safe.
    writer.write(size - sent < chunk.byteLength ? chunk.subarray(0, size - sent) : chunk).catch(() => {});
  }
  await writer.close();
}

/** Reads `readable` to its end: the bytes, the number of chunks, and when the last arrived. */
export async function countAll(readable: ReadableStream<Uint8Array>): Promise<{ bytes: number; packets: number }> {
  let bytes = 0;
  let packets = 0;
  for await (const chunk of readable) {
    bytes += chunk.byteLength;
    packets++;
  }
  return { bytes, packets };
}

const message = randomBytes(ECHO_SIZE);

/**
 * Opens a bidirectional stream, sends ECHO_SIZE bytes and reads them back; then finishes the
 * stream without waiting, so that the echo is all that is timed.
 */
export async function echoOnce(transport: QuicTransport): Promise<void> {
  const { readable, writable } = await transport.createBidirectionalStream();
  const writer = writable.getWriter();
  const reader = readable.getReader();
  await writer.write(message);
  for (let got = 0; got < ECHO_SIZE;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the echo stream ended early');
    got += value.byteLength;
  }
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
