/**
 * What every QUIC worker of the bench does with WHATWG streams, whichever library made them: send
 * a bulk of bytes, count them, and time echoes. No library is imported here, so that a worker of
 * one library does not load another.
 */
import { ECHO_SIZE, now } from './common.js';

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

/** Writes `message` and reads until as many bytes have come back. */
export async function roundTrip(
  writer: WritableStreamDefaultWriter<Uint8Array>,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  message: Uint8Array,
): Promise<void> {
  await writer.write(message);
  for (let got = 0; got < message.byteLength;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the echo stream ended early');
    got += value.byteLength;
  }
}

/**
 * `warmup + iterations` sequential round trips of ECHO_SIZE bytes on one bidirectional stream,
 * which it then finishes; resolves with the times of the last `iterations`, in milliseconds.
 */
export async function echoSamples(
  stream: ReadableWritablePair<Uint8Array, Uint8Array>,
  iterations: number,
  warmup: number,
): Promise<number[]> {
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const message = crypto.getRandomValues(new Uint8Array(ECHO_SIZE));
  const samples: number[] = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const start = now();
    await roundTrip(writer, reader, message);
    if (i >= warmup) samples.push(now() - start);
  }
  await writer.close();
  return samples;
}
