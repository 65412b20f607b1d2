/**
 * File transfer over one QUIC stream, client and server in this process (`npm start`).
 *
 *   npx tsx examples/file-transfer.ts [--size <MiB>] [file]
 *
 * Sends `file`, or a temporary file of --size MiB of random bytes (default 64), from a client to a
 * server on 127.0.0.1 with `pipeTo`, shows progress, then checks that the SHA-256 of what arrived
 * matches and prints the throughput. Exits non-zero when the copies differ.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { QuicServer, QuicTransport } from '../lib/index.js';

const MIB = 1024 * 1024;
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { size: { type: 'string', default: '64' } },
});
const sizeMiB = Number(values.size);
if (!(sizeMiB > 0)) throw new RangeError(`--size must be a positive number of MiB, got ${values.size}`);

/** Creates or picks the file, sends it, and checks what arrived. */
async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'quichex-transfer-'));
  const server = new QuicServer({ host: '127.0.0.1', port: 0, protocols: ['file'] });
  let client: QuicTransport | undefined;
  let progress: Progress | undefined;
  try {
    const source = positionals[0] ?? join(dir, 'source.bin');
    if (!positionals[0]) await writeRandomFile(source, Math.round(sizeMiB * MIB));
    const target = join(dir, 'received.bin');
    const { size } = await stat(source);

    await server.listen();
    const { port } = server.address;
    client = new QuicTransport(`quic://127.0.0.1:${port}`, {
      protocols: ['file'],
      serverCertificateHashes: server.certificateHashes,
    });
    progress = new Progress(size);
    await client.ready;

    const start = performance.now();
    const stream = await client.createUnidirectionalStream();
    // Done when the server has written every byte to disk, not merely when the client sent it.
    await Promise.all([Readable.toWeb(createReadStream(source)).pipeTo(stream), receive(server, target, progress)]);
    const seconds = (performance.now() - start) / 1000;
    progress.stop();

    const [sent, got] = await Promise.all([sha256(source), sha256(target)]);
    const rate = `${(size / MIB / seconds).toFixed(1)} MiB/s, ${((size * 8) / 1e6 / seconds).toFixed(0)} Mbit/s`;
    console.log(`${formatBytes(size)} in ${seconds.toFixed(3)} s: ${rate}`);
    console.log(`sha-256 sent     ${sent}\nsha-256 received ${got}`);
    const same = sent === got;
    console.log(same ? 'OK: the copies are identical' : 'FAILED: the copies differ');
    if (!same) process.exitCode = 1;
  } catch (e) {
    progress?.stop();
    console.error(`transfer failed: ${(e as Error).message}`);
    process.exitCode = 1;
  } finally {
    progress?.stop();
    client?.close({ closeCode: 0, reason: 'done' });
    await client?.closed.catch(() => {});
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Accepts one session and writes its first unidirectional stream to `path`, counting bytes. */
async function receive(server: QuicServer, path: string, progress: Progress): Promise<void> {
  const session = await server.accept();
  if (!session) throw new Error('the server closed before a client connected');
  const { value: stream } = await session.incomingUnidirectionalStreams.getReader().read();
  if (!stream) throw new Error('the session closed before the file arrived');
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      progress.add(chunk.byteLength);
      controller.enqueue(chunk);
    },
  });
  await stream.pipeThrough(counter).pipeTo(Writable.toWeb(createWriteStream(path)));
}

/** A progress line: redrawn in place on a terminal, a line per quarter otherwise. */
class Progress {
  readonly #total: number;
  readonly #tty = process.stdout.isTTY === true;
  readonly #timer: NodeJS.Timeout | undefined;
  #bytes = 0;
  #quarter = 0;
  #stopped = false;

  constructor(total: number) {
    this.#total = total;
    if (this.#tty) this.#timer = setInterval(() => this.#draw('\r'), 100);
  }

  add(n: number): void {
    this.#bytes += n;
    if (this.#tty) return;
    const quarter = Math.floor((4 * this.#bytes) / Math.max(this.#total, 1));
    if (quarter > this.#quarter && quarter < 4) {
      this.#quarter = quarter;
      this.#draw('');
    }
  }

  /** Draws the final state and stops redrawing; safe to call twice. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#draw(this.#tty ? '\r' : '');
    if (this.#tty) process.stdout.write('\n');
  }

  #draw(prefix: string): void {
    const pct = this.#total === 0 ? 100 : (100 * this.#bytes) / this.#total;
    const line = `received ${formatBytes(this.#bytes)} of ${formatBytes(this.#total)} (${pct.toFixed(0)}%)`;
    if (prefix) process.stdout.write(prefix + line);
    else console.log(line);
  }
}

function formatBytes(n: number): string {
  return n >= MIB ? `${(n / MIB).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

async function writeRandomFile(path: string, size: number): Promise<void> {
  async function* chunks() {
    for (let left = size; left > 0; left -= MIB) yield randomBytes(Math.min(MIB, left));
  }
  await pipeline(Readable.from(chunks()), createWriteStream(path));
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

await main();
