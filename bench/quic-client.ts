/**
 * Benchmark worker: a quichex client pinned to the server's certificate hash. Started by
 * bench/run.ts with --port, --hash and one --mode:
 *   bulk --size <bytes>: sends that many bytes on one unidirectional stream, reports when the
 *     first byte was written, and stays connected until told to stop.
 *   parallel --size <bytes> --streams <n>: the same bytes split over n streams written at once.
 *   download: counts the first unidirectional stream the server opens (see --push of
 *     quic-server.ts) and reports `received`.
 *   echo --iterations <n> --warmup <n>: sequential round trips of ECHO_SIZE bytes on one
 *     bidirectional stream; reports the round-trip times after warm-up, then closes.
 *   datagrams --duration <ms>: sends DATAGRAM_PAYLOAD-byte datagrams as fast as writes resolve
 *     for that long, then reports `sent`.
 *   datagram-echo --iterations <n> --warmup <n>: sequential ECHO_SIZE-byte datagram round trips.
 *   paused --size <bytes>: opens a stream, reports `connected` and waits for `go`; then writes
 *     that many bytes in 64 KiB chunks, awaiting each write, to a server that never reads. Reports
 *     `blocked` once a write has waited 250 ms, and `sent` if all were taken.
 */
import { randomBytes } from 'node:crypto';
import { DATAGRAM_PAYLOAD, ECHO_SIZE, go, now, onControl, report, workerArgs } from './common.js';
import { connect } from './quic-streams.js';
import { countAll, echoSamples, writeAll } from './web-streams.js';

const CHUNK = 64 * 1024;
/** A datagram ping lost on loopback is sent again after this long, as dgram-peer.ts does. */
const PING_RETRY_MS = 200;
/** How long a write must wait before the writer counts as blocked. */
const BLOCKED_MS = 250;

const args = workerArgs();
const transport = connect({ port: args.port, hash: args.hash });
const stopping = onControl(async () => {
  transport.close({ closeCode: 0, reason: 'done' });
  await transport.closed.catch(() => {});
});
await transport.ready;

async function bulk(size: number, streams: number): Promise<void> {
  const chunk = randomBytes(CHUNK);
  const writables = await Promise.all(Array.from({ length: streams }, () => transport.createUnidirectionalStream()));
  const share = Math.floor(size / streams);
  const start = now();
  // The last stream takes what does not divide evenly.
  await Promise.all(writables.map((w, i) => writeAll(w, i < streams - 1 ? share : size - share * i, chunk)));
  report({ type: 'sent', start, bytes: size });
}

async function download(): Promise<void> {
  const reader = transport.incomingUnidirectionalStreams.getReader();
  const { value: readable } = await reader.read();
  if (!readable) throw new Error('the server opened no stream');
  const counted = await countAll(readable);
  report({ type: 'received', ...counted, last: now() });
}

async function echo(iterations: number, warmup: number): Promise<void> {
  const samples = await echoSamples(await transport.createBidirectionalStream(), iterations, warmup);
  report({ type: 'samples', samples });
}

async function datagrams(durationMs: number): Promise<void> {
  const writer = transport.datagrams.writable.getWriter();
  const payload = randomBytes(DATAGRAM_PAYLOAD);
  const start = now();
  let packets = 0;
  for (; now() - start < durationMs; packets++) await writer.write(payload);
  report({ type: 'sent', start, bytes: packets * DATAGRAM_PAYLOAD, packets });
}

async function datagramEcho(iterations: number, warmup: number): Promise<void> {
  const writer = transport.datagrams.writable.getWriter();
  const reader = transport.datagrams.readable.getReader();
  const message = Buffer.alloc(ECHO_SIZE, 0x61);
  const samples: number[] = [];
  for (let seq = 0; seq < warmup + iterations; seq++) {
    message.writeUInt32BE(seq, 0);
    const start = now();
    // A write copies the bytes, so the message can be reused.
    const send = () => writer.write(message).catch(() => {});
    const retry = setInterval(send, PING_RETRY_MS);
    void send();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the session ended');
        // A late answer to an earlier ping is skipped.
        if (Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32BE(0) === seq) break;
      }
    } finally {
      clearInterval(retry);
    }
    if (seq >= warmup) samples.push(now() - start);
  }
  report({ type: 'samples', samples });
}

async function paused(size: number): Promise<void> {
  const writer = (await transport.createUnidirectionalStream()).getWriter();
  report({ type: 'connected', count: 1, failed: 0, ms: 0 });
  await go();
  const chunk = randomBytes(CHUNK);
  let written = 0;
  let progress = now();
  const watch = setInterval(() => {
    if (now() - progress < BLOCKED_MS) return;
    clearInterval(watch);
    report({ type: 'blocked', bytes: written, at: now() });
  }, 50);
  const start = now();
  try {
    for (; written < size; written += CHUNK) {
      await writer.write(chunk);
      progress = now();
    }
  } finally {
    clearInterval(watch);
  }
  report({ type: 'sent', start, bytes: written });
}

try {
  const n = (name: string) => Number(args[name]);
  switch (args.mode) {
    case 'bulk':
      await bulk(n('size'), 1);
      break;
    case 'parallel':
      await bulk(n('size'), n('streams'));
      break;
    case 'download':
      await download();
      break;
    case 'echo':
      await echo(n('iterations'), n('warmup'));
      break;
    case 'datagrams':
      await datagrams(n('duration'));
      break;
    case 'datagram-echo':
      await datagramEcho(n('iterations'), n('warmup'));
      break;
    case 'paused':
      await paused(n('size'));
      break;
    default:
      throw new Error(`unknown mode ${args.mode}`);
  }
} catch (e) {
  if (!stopping()) throw e; // Stopped mid-run (a timeout): the closed session is expected.
}
