import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { QuicServer } from '../../lib/index.js';
import { connectPair, startServer, within } from '../helpers/pair.js';

const SIZE = 32 * 1024 * 1024;

describe('file transfer with pipeTo', () => {
  let server: QuicServer;
  let dir: string;
  before(async () => {
    server = await startServer();
    dir = await mkdtemp(join(tmpdir(), 'quichex-test-'));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test(`a ${SIZE / 1024 / 1024} MiB file arrives byte-identical`, async () => {
    const source = join(dir, 'source.bin');
    const target = join(dir, 'target.bin');
    await writeFile(source, randomBytes(SIZE));
    const { client, session } = await connectPair(server);

    const received = (async () => {
      const reader = session.incomingUnidirectionalStreams.getReader();
      const { value } = await reader.read();
      await (value as ReadableStream<Uint8Array>).pipeTo(Writable.toWeb(createWriteStream(target)));
    })();
    const writable = await client.createUnidirectionalStream();
    await within(60_000, Readable.toWeb(createReadStream(source)).pipeTo(writable), 'sending');
    await within(60_000, received, 'receiving');

    const hash = async (path: string) =>
      createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
    assert.equal(await hash(target), await hash(source));
    client.close();
  });
});
