/**
 * Benchmark worker: a quichex client pinned to the server's certificate hash.
 *   --mode bulk --size <bytes>: sends that many bytes on one unidirectional stream, reports when
 *     the first byte was written, and stays connected until told to stop.
 *   --mode echo --iterations <n> --warmup <n>: sequential round trips of ECHO_SIZE bytes on one
 *     bidirectional stream; reports the round-trip times after warm-up, then closes.
 */
import { randomBytes } from 'node:crypto';
import { QuicTransport } from '../lib/index.js';
import { ECHO_SIZE, now, onControl, report, workerArgs } from './common.js';

const args = workerArgs();
const transport = new QuicTransport(`quic://127.0.0.1:${args.port}`, {
  protocols: ['bench'],
  serverCertificateHashes: [{ algorithm: 'sha-256', value: Buffer.from(args.hash, 'hex') }],
});
const stopping = onControl(async () => {
  transport.close({ closeCode: 0, reason: 'done' });
  await transport.closed.catch(() => {});
});
await transport.ready;

async function bulk(size: number): Promise<void> {
  const chunk = randomBytes(64 * 1024);
  const writer = (await transport.createUnidirectionalStream()).getWriter();
  const start = now();
  for (let sent = 0; sent < size; sent += chunk.byteLength) {
    await writer.ready;
    // Errors surface through `ready` and `close()`; the chunk is never modified, so reuse is safe.
    writer.write(size - sent < chunk.byteLength ? chunk.subarray(0, size - sent) : chunk).catch(() => {});
  }
  await writer.close();
  report({ type: 'sent', start, bytes: size });
}

async function echo(iterations: number, warmup: number): Promise<void> {
  const { readable, writable } = await transport.createBidirectionalStream();
  const writer = writable.getWriter();
  const reader = readable.getReader();
  const message = randomBytes(ECHO_SIZE);
  const samples: number[] = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const start = now();
    await writer.write(message);
    for (let got = 0; got < ECHO_SIZE;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the echo stream ended early');
      got += value.byteLength;
    }
    if (i >= warmup) samples.push(now() - start);
  }
  await writer.close();
  report({ type: 'samples', samples });
}

try {
  if (args.mode === 'bulk') await bulk(Number(args.size));
  else await echo(Number(args.iterations), Number(args.warmup));
} catch (e) {
  if (!stopping()) throw e; // Stopped mid-run (a timeout): the closed session is expected.
}
