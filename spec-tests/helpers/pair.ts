/** Shared set-up for tests: a loopback server and clients that trust it by hash. */
import { QuicServer, QuicTransport, type QuicServerOptions, type QuicTransportOptions } from '../../lib/index.js';

export const PROTOCOL = 'test';

/** A listening server on 127.0.0.1 (or `host`), closed by the caller. */
export async function startServer(options: QuicServerOptions = {}): Promise<QuicServer> {
  const server = new QuicServer({ host: '127.0.0.1', port: 0, protocols: [PROTOCOL], ...options });
  await server.listen();
  return server;
}

/** The `quic://` URL of a server. */
export function urlOf(server: QuicServer): string {
  const { address, port, family } = server.address;
  return family === 'IPv6' ? `quic://[${address}]:${port}` : `quic://${address}:${port}`;
}

/** A client pinned to the server's certificate. */
export function connect(server: QuicServer, options: QuicTransportOptions = {}): QuicTransport {
  return new QuicTransport(urlOf(server), {
    protocols: [PROTOCOL],
    serverCertificateHashes: server.certificateHashes,
    ...options,
  });
}

/** A connected client and the server's side of the same connection. */
export async function connectPair(
  server: QuicServer,
  options: QuicTransportOptions = {},
): Promise<{ client: QuicTransport; session: QuicTransport }> {
  const client = connect(server, options);
  const [session] = await Promise.all([
    within(10_000, server.accept(), 'accept'),
    within(10_000, client.ready, 'ready'),
  ]);
  if (!session) throw new Error('server closed before accepting');
  return { client, session };
}

/** Rejects if `promise` does not settle within `ms`. */
export async function within<T>(ms: number, promise: Promise<T>, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What `promise` settled with: null when fulfilled, else the error. */
export function outcome(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (e: unknown) => e,
  );
}

/** Reads a stream to the end into one buffer. */
export async function readAll(readable: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of readable) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Echoes every incoming bidirectional stream of `session` back to its sender. */
export function echo(session: QuicTransport): void {
  void (async () => {
    for await (const stream of session.incomingBidirectionalStreams) {
      stream.readable.pipeTo(stream.writable).catch(() => {});
    }
  })().catch(() => {});
}

/** Writes `text` to a stream and closes it (FIN). */
export async function writeText(writable: WritableStream<Uint8Array>, text: string): Promise<void> {
  const writer = writable.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
}

/** The next stream the peer opened, failing after 5 s; the incoming stream stays readable. */
export async function nextIncoming<T>(incoming: ReadableStream<T>): Promise<T> {
  const reader = incoming.getReader();
  try {
    const { value, done } = await within(5000, reader.read(), 'incoming stream');
    if (done) throw new Error('no more incoming streams');
    return value;
  } finally {
    reader.releaseLock();
  }
}

/** Sends `text` on a new bidirectional stream of `client` and returns what comes back. */
export async function echoText(client: QuicTransport, text: string): Promise<string> {
  const { readable, writable } = await client.createBidirectionalStream();
  await writeText(writable, text);
  return (await within(5000, readAll(readable), 'echo')).toString();
}

/** Writes 1 KiB every 5 ms until a write fails (e.g. the peer's STOP_SENDING); returns that error. */
export function writeUntilError(writer: WritableStreamDefaultWriter<Uint8Array>, what: string): Promise<unknown> {
  return within(
    5000,
    (async () => {
      for (;;) {
        await writer.write(new Uint8Array(1024));
        await new Promise((r) => setTimeout(r, 5));
      }
    })().catch((e: unknown) => e),
    what,
  );
}
