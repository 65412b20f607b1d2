/**
 * Chat: one server, many clients; every line a client sends reaches every other client
 * (`npm run example:chat`).
 *
 *   npx tsx examples/chat.ts              # demo: a server and three clients in this process
 *   npx tsx examples/chat.ts --server [--port 4433] [--host 127.0.0.1]
 *   npx tsx examples/chat.ts --client quic://127.0.0.1:4433 --hash <hex> [--name ada]
 *
 * Each client opens ONE bidirectional stream and uses it both ways, newline-delimited UTF-8. Up:
 * its name, then a message per line. Down: a welcome line, then `name: text` for every other
 * client's message and `* name joined` / `* name left` notices. One stream keeps each client's
 * lines in order and ties the lines to who sent them. A client leaves by closing its writable
 * (FIN); the server then ends its side of the stream, and the client closes the session.
 *
 * The demo joins three clients one after the other (so every client hears everything said after
 * its own welcome), lets them talk at once, waits until each has heard all the others, and has
 * them leave in turn. In `--server` mode the server prints the SHA-256 of its generated,
 * self-signed certificate; `--client` pins it with `serverCertificateHashes`, as WebTransport does.
 * Type lines into a client; Ctrl-D leaves. Ctrl-C stops the server.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { QuicServer, QuicTransport, QuicTransportError, type CertificateHash } from '../lib/index.js';

const { values } = parseArgs({
  options: {
    server: { type: 'boolean', default: false },
    client: { type: 'string' },
    hash: { type: 'string' },
    name: { type: 'string', default: process.env.USER ?? 'guest' },
    port: { type: 'string', default: '4433' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

/** A peer must not make us buffer without bound: an unfinished line longer than this closes the session. */
const MAX_LINE = 4096;
/** Lines queued for a client that does not read; past this it is disconnected. */
const MAX_BACKLOG = 256;
const encoder = new TextEncoder();
const noop = () => {};

/** Splits UTF-8 bytes into lines (without their `\n` or `\r\n`). */
function lines(readable: ReadableStream<Uint8Array>): ReadableStream<string> {
  const decoder = new TextDecoder();
  let rest = '';
  const split = new TransformStream<Uint8Array, string>({
    transform(chunk, controller) {
      const parts = (rest + decoder.decode(chunk, { stream: true })).split('\n');
      rest = parts.pop() ?? '';
      if (rest.length > MAX_LINE) throw new RangeError(`line longer than ${MAX_LINE} characters`);
      for (const line of parts) controller.enqueue(line.replace(/\r$/, ''));
    },
    flush(controller) {
      rest += decoder.decode();
      if (rest) controller.enqueue(rest);
    },
  });
  return readable.pipeThrough(split);
}

interface Member {
  name: string;
  session: QuicTransport;
  writer: WritableStreamDefaultWriter<Uint8Array>;
}

/** Who is connected, and the one place that writes to them. */
class Room {
  readonly #members = new Set<Member>();

  join(member: Member): void {
    const others = [...this.#members].map((m) => m.name);
    this.#send(
      member,
      `* welcome ${member.name}; ${others.length ? `here: ${others.join(', ')}` : 'nobody else here'}`,
    );
    this.broadcast(member, `* ${member.name} joined`);
    this.#members.add(member);
  }

  leave(member: Member): void {
    if (this.#members.delete(member)) this.broadcast(member, `* ${member.name} left`);
  }

  /** Sends `line` to everyone but `from`. */
  broadcast(from: Member, line: string): void {
    for (const m of this.#members) if (m !== from) this.#send(m, line);
  }

  #send(to: Member, line: string): void {
    // write() settles when QUIC has taken the bytes; not awaiting it lets one slow client not hold
    // up the others, so bound what waits for it instead.
    if ((to.writer.desiredSize ?? 0) < -MAX_BACKLOG) {
      to.session.close({ closeCode: 1, reason: 'too slow' });
      return;
    }
    // A failed write means the stream or session failed: its reader ends and the member leaves.
    to.writer.write(encoder.encode(`${line}\n`)).catch(noop);
  }
}

/** Accepts sessions until the server closes; each client's first stream is its place in the room. */
async function serve(server: QuicServer, log: (line: string) => void): Promise<void> {
  const room = new Room();
  for await (const session of server) {
    converse(session, room, log).catch((e: Error) => {
      // A session closed by either side ends the conversation normally; "left" is logged already.
      if (e instanceof QuicTransportError && e.code === 'ERR_QUIC_SESSION_CLOSED') return;
      log(`server: closing a client's session: ${e.message}`);
      session.close({ closeCode: 1, reason: e.message });
    });
  }
}

/** Reads one client's lines and hands them to the room, until the client ends its stream. */
async function converse(session: QuicTransport, room: Room, log: (line: string) => void): Promise<void> {
  const incoming = session.incomingBidirectionalStreams.getReader();
  const { value: stream } = await incoming.read();
  incoming.releaseLock();
  if (!stream) return;
  const writer = stream.writable.getWriter();
  let member: Member | undefined;
  try {
    for await (const line of lines(stream.readable)) {
      if (member) {
        room.broadcast(member, `${member.name}: ${line}`);
        continue;
      }
      member = { name: line.trim() || 'guest', session, writer };
      room.join(member);
      log(`server: ${member.name} joined from ${session.remoteAddress?.address}:${session.remoteAddress?.port}`);
    }
  } finally {
    if (member) {
      room.leave(member);
      log(`server: ${member.name} left`);
    }
    // Our half of the stream ends after the last notice we queued for this client.
    await writer.close().catch(noop);
  }
}

/** A chat client: `join()`, `say()` lines, `leave()`. Every line heard goes to `print`. */
class ChatClient {
  readonly name: string;
  readonly #transport: QuicTransport;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #print: (line: string) => void;
  #listening: Promise<void> = Promise.resolve();
  #heard = 0;
  #waiter: { count: number; resolve: () => void } | undefined;

  private constructor(
    name: string,
    transport: QuicTransport,
    writable: WritableStream<Uint8Array>,
    print: (line: string) => void,
  ) {
    this.name = name;
    this.#transport = transport;
    this.#writer = writable.getWriter();
    this.#print = print;
  }

  /** Connects, sends our name, and resolves once the server has welcomed us. */
  static async join(
    url: string,
    hashes: CertificateHash[],
    name: string,
    print: (line: string) => void,
  ): Promise<ChatClient> {
    const transport = new QuicTransport(url, { protocols: ['chat'], serverCertificateHashes: hashes });
    try {
      await transport.ready;
      const { readable, writable } = await transport.createBidirectionalStream();
      const client = new ChatClient(name, transport, writable, print);
      const reader = lines(readable).getReader();
      await client.say(name);
      const welcome = await reader.read();
      if (welcome.done) throw new Error('the server ended the stream before welcoming us');
      print(welcome.value);
      client.#listening = client.#listen(reader);
      return client;
    } catch (e) {
      transport.close();
      throw e;
    }
  }

  say(text: string): Promise<void> {
    return this.#writer.write(encoder.encode(`${text}\n`));
  }

  /** Resolves once `count` messages (not notices) have been heard, or the server ended the stream. */
  heard(count: number): Promise<void> {
    if (this.#heard >= count) return Promise.resolve();
    return new Promise((resolve) => (this.#waiter = { count, resolve }));
  }

  /** Ends our stream, hears the rest until the server ends its side, then closes the session. */
  async leave(): Promise<void> {
    // Fails only when the session is already gone; `closed` below says how it ended.
    await this.#writer.close().catch(noop);
    await this.#listening;
    this.#transport.close({ closeCode: 0, reason: 'bye' });
    await this.#transport.closed;
  }

  /** Closes the session at once (a no-op after `leave()`). */
  close(): void {
    this.#transport.close();
  }

  /** Settles (never rejects) when the server has ended its side of the stream, or the session ended. */
  get ended(): Promise<void> {
    return this.#listening;
  }

  async #listen(reader: ReadableStreamDefaultReader<string>): Promise<void> {
    try {
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        this.#print(r.value);
        if (!r.value.startsWith('* ')) this.#heard++;
        if (this.#waiter && this.#heard >= this.#waiter.count) this.#waiter.resolve();
      }
    } catch (e) {
      this.#print(`* disconnected: ${(e as Error).message}`);
    } finally {
      this.#waiter?.resolve();
    }
  }
}

/** Server and three clients in this process; resolves when everything is closed. */
async function demo(): Promise<void> {
  // A safety net: the demo takes well under a second, so a hang is a bug worth reporting.
  const watchdog = setTimeout(() => {
    console.error('chat demo: still running after 10 s, giving up');
    process.exit(1);
  }, 10_000);
  const server = new QuicServer({ host: '127.0.0.1', port: 0, protocols: ['chat'] });
  await server.listen();
  const serving = serve(server, console.log);
  const url = `quic://127.0.0.1:${server.address.port}`;
  const scripts: Record<string, string[]> = {
    ada: ['hello, everyone', 'my lines arrive in order: one stream each', 'bye!'],
    bob: ['hi ada', 'and the server fans them out to the rest of us', 'see you'],
    cy: ['hey both', 'no polling, just for await', 'later'],
  };
  const clients: ChatClient[] = [];
  try {
    // One after the other, so that each is in the room before anyone speaks.
    for (const name of Object.keys(scripts)) {
      const print = (line: string) => console.log(`  [${name}] ${line}`);
      clients.push(await ChatClient.join(url, server.certificateHashes, name, print));
    }
    const said = Object.values(scripts).flat().length;
    await Promise.all(
      clients.map(async (c) => {
        for (const text of scripts[c.name]) await c.say(text);
        await c.heard(said - scripts[c.name].length);
      }),
    );
    for (const c of clients) await c.leave();
  } finally {
    clearTimeout(watchdog);
    for (const c of clients) c.close();
    await server.close();
    await serving;
  }
}

/** `--server`: serves until Ctrl-C. */
async function serverMode(): Promise<void> {
  const server = new QuicServer({ host: values.host, port: Number(values.port), protocols: ['chat'] });
  await server.listen();
  const { address, port } = server.address;
  const hash = Buffer.from(server.certificateHashes[0].value).toString('hex');
  console.log(`chat server on quic://${address}:${port}; Ctrl-C to stop. Join with:`);
  console.log(`  npx tsx examples/chat.ts --client quic://${address}:${port} --hash ${hash} --name <you>`);
  process.once('SIGINT', () => void server.close());
  await serve(server, console.log);
}

/** `--client <url> --hash <hex>`: sends stdin lines until end of input or the server goes away. */
async function clientMode(url: string): Promise<void> {
  if (!values.hash || !/^[0-9a-f]{64}$/i.test(values.hash)) throw new TypeError('--hash must be 64 hex digits');
  const hashes: CertificateHash[] = [{ algorithm: 'sha-256', value: Buffer.from(values.hash, 'hex') }];
  const client = await ChatClient.join(url, hashes, values.name, console.log);
  const input = createInterface({ input: process.stdin, terminal: false });
  void client.ended.then(() => input.close());
  for await (const line of input) await client.say(line);
  await client.leave();
}

try {
  if (values.server) await serverMode();
  else if (values.client) await clientMode(values.client);
  else await demo();
} catch (e) {
  console.error(`chat failed: ${(e as Error).message}`);
  process.exitCode = 1;
}
