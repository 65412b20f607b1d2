/**
 * `QuicTransport`: one QUIC connection, shaped like the W3C `WebTransport` interface
 * (https://w3c.github.io/webtransport/#web-transport). Clients construct it from a
 * `quic://host:port` URL; servers hand out the same class from `QuicServer.accept()`.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Endpoint, type ConnectionOwner } from './endpoint.js';
import { MAX_QUIC_CODE, QuicTransportError, type QuicCode } from './errors.js';
import { Ev, closeResult, fromNative, type CloseResult } from './native.js';
import { clientOptions, type QuicTransportOptions } from './options.js';
import { createReceiveStream } from './streams/receive-stream.js';
import { createSendStream } from './streams/send-stream.js';
import type { StreamHost, StreamSide } from './streams/stream-host.js';

/** How a session ended cleanly. */
export interface QuicCloseInfo {
  closeCode: QuicCode;
  reason: string;
}

/** A bidirectional stream: bytes in, bytes out. */
export interface QuicBidirectionalStream {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/** A socket address. */
export interface QuicAddress {
  address: string;
  port: number;
  family: string;
}

/** The argument of `close()`. */
export interface QuicCloseOptions {
  /** Application close code, 0 … 2^62−1. Default 0. */
  closeCode?: QuicCode;
  /** Reason, at most 1024 bytes of UTF-8 (longer is truncated, as in WebTransport). */
  reason?: string;
}

type State = 'connecting' | 'connected' | 'closed' | 'failed';

const kServerSide = Symbol('quichex.serverSide');
const MAX_REASON_BYTES = 1024;

/** How `QuicServer` creates the server side of a connection. */
export interface ServerSideInit {
  endpoint: Endpoint;
  handle: number;
  handshakeTimeout: number;
  onEstablished(session: QuicTransport): void;
  onEnd(session: QuicTransport): void;
  /** Filled in by the constructor: where the endpoint delivers this connection's events. */
  owner?: ConnectionOwner;
}

interface StreamEntry {
  recv?: StreamSide;
  send?: StreamSide;
  sides: number;
}

function parseUrl(url: unknown): { host: string; port: number } {
  if (typeof url !== 'string' && !(url instanceof URL))
    throw new TypeError(`url must be a string or URL, got ${typeof url}`);
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    throw new TypeError(`invalid URL: ${String(url)}`);
  }
  if (u.protocol !== 'quic:') throw new TypeError(`url must use the quic: scheme, got ${u.protocol}`);
  if (u.username || u.password) throw new TypeError('url must not contain credentials');
  // URL.hash is '' for an empty fragment ("quic://h:1#"), which is a fragment all the same.
  if (u.href.includes('#')) throw new TypeError('url must not contain a fragment');
  // A raw QUIC connection has no path or query to send them in; reject rather than drop them.
  if ((u.pathname !== '' && u.pathname !== '/') || u.href.includes('?')) {
    throw new TypeError(`url must not contain a path or query: ${String(url)}`);
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (!host) throw new TypeError(`url has no host: ${String(url)}`);
  const port = u.port === '' ? 443 : Number(u.port);
  if (port === 0) throw new TypeError('url port must not be 0');
  return { host, port };
}

function closeArgs(options: QuicCloseOptions | undefined): {
  code: bigint;
  closeCode: QuicCode;
  reason: string;
  bytes: Buffer;
} {
  const { closeCode = 0, reason = '' } = options ?? {};
  const valid =
    (typeof closeCode === 'number' && Number.isSafeInteger(closeCode) && closeCode >= 0) ||
    (typeof closeCode === 'bigint' && closeCode >= 0n && closeCode <= MAX_QUIC_CODE);
  if (!valid) throw new RangeError(`closeCode must be an integer 0 … 2^62-1, got ${String(closeCode)}`);
  if (typeof reason !== 'string') throw new TypeError(`reason must be a string, got ${typeof reason}`);
  let bytes = Buffer.from(reason, 'utf8');
  if (bytes.length > MAX_REASON_BYTES) {
    // Cut at a character boundary, as the W3C spec's "UTF-8 encode, truncate" does.
    let end = MAX_REASON_BYTES;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
    bytes = bytes.subarray(0, end);
  }
  return { code: BigInt(closeCode), closeCode, reason: bytes.toString('utf8'), bytes };
}

/** A QUIC connection with WebTransport's shape: streams, `ready`, `closed`, `close()`. */
export class QuicTransport {
  /** Resolves once the handshake is complete; rejects if it fails. */
  readonly ready: Promise<void>;
  /** Resolves with `{ closeCode, reason }` on a clean close by either side; rejects on failure. */
  readonly closed: Promise<QuicCloseInfo>;
  /** Resolves when the connection starts to close (the peer's CONNECTION_CLOSE arrived or we closed). */
  readonly draining: Promise<void>;
  /** Bidirectional streams the peer opens. */
  readonly incomingBidirectionalStreams: ReadableStream<QuicBidirectionalStream>;
  /** Unidirectional streams the peer opens. */
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;

  #state: State = 'connecting';
  #endpoint: Endpoint | undefined;
  #handle = -1;
  readonly #isServer: boolean;
  readonly #streams = new Map<number, StreamEntry>();
  #nextBidi: number;
  #nextUni: number;
  #creditWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #protocol = '';
  #remote: QuicAddress | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #server: ServerSideInit | undefined;
  /** Why the session ended: what later calls on it throw. */
  #ended: QuicTransportError | undefined;
  #resolveReady!: () => void;
  #rejectReady!: (e: unknown) => void;
  #resolveClosed!: (info: QuicCloseInfo) => void;
  #rejectClosed!: (e: unknown) => void;
  #resolveDraining!: () => void;
  #incomingBidi!: ReadableStreamDefaultController<QuicBidirectionalStream>;
  #incomingUni!: ReadableStreamDefaultController<ReadableStream<Uint8Array>>;
  readonly #host: StreamHost;

  /**
   * Connects to `url` (`quic://host:port`; the port defaults to 443). Throws a `TypeError`
   * for a bad URL or option; everything later is reported through `ready` and `closed`.
   */
  constructor(url: string | URL, options?: QuicTransportOptions) {
    const server = (url as unknown) === kServerSide ? (options as unknown as ServerSideInit) : undefined;
    const target = server ? undefined : parseUrl(url);
    const resolved = target ? clientOptions(options, target.host) : undefined;
    this.#isServer = server !== undefined;
    this.#nextBidi = this.#isServer ? 1 : 0;
    this.#nextUni = this.#isServer ? 3 : 2;
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.closed = new Promise((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    this.draining = new Promise((resolve) => {
      this.#resolveDraining = resolve;
    });
    // As in WebTransport, these rejections count as handled: not awaiting them is fine.
    this.ready.catch(noop);
    this.closed.catch(noop);
    this.incomingBidirectionalStreams = new ReadableStream({ start: (c) => void (this.#incomingBidi = c) });
    this.incomingUnidirectionalStreams = new ReadableStream({ start: (c) => void (this.#incomingUni = c) });
    const self = this;
    this.#host = {
      get endpoint() {
        return self.#endpoint as Endpoint;
      },
      get handle() {
        return self.#handle;
      },
      sideDone: (id) => this.#sideDone(id),
    };
    const owner: ConnectionOwner = { onEvent: (kind, id) => this.#onEvent(kind, id) };
    if (server) {
      this.#server = server;
      this.#endpoint = server.endpoint;
      this.#handle = server.handle;
      server.owner = owner;
      this.#startHandshakeTimer(server.handshakeTimeout);
    } else if (target && resolved) {
      void this.#connect(target, resolved, owner);
    }
  }

  /** The negotiated application protocol (ALPN); empty until `ready`. */
  get protocol(): string {
    return this.#protocol;
  }

  /** The peer's address (once known). */
  get remoteAddress(): QuicAddress | undefined {
    return this.#remote;
  }

  /** The local socket's address (once bound). */
  get localAddress(): QuicAddress | undefined {
    return this.#endpoint?.local;
  }

  /** Opens a bidirectional stream, waiting for the peer's stream credit when it is used up. */
  async createBidirectionalStream(): Promise<QuicBidirectionalStream> {
    const id = await this.#openStream(true);
    const entry = this.#addStream(id, true, true);
    return {
      readable: entry.readable as ReadableStream<Uint8Array>,
      writable: entry.writable as WritableStream<Uint8Array>,
    };
  }

  /** Opens a unidirectional (send-only) stream. */
  async createUnidirectionalStream(): Promise<WritableStream<Uint8Array>> {
    const id = await this.#openStream(false);
    return this.#addStream(id, false, true).writable as WritableStream<Uint8Array>;
  }

  /**
   * Closes the connection with an application close code and reason. Open streams error with
   * `ERR_QUIC_SESSION_CLOSED`; `closed` resolves with what was sent.
   */
  close(options?: QuicCloseOptions): void {
    const { code, closeCode, reason, bytes } = closeArgs(options);
    if (this.#state === 'closed' || this.#state === 'failed') return;
    if (this.#handle >= 0) {
      this.#endpoint?.native.close(this.#handle, true, code, bytes);
      this.#endpoint?.flushSoon();
    }
    if (this.#state === 'connecting') {
      this.#fail(
        new QuicTransportError('the session was closed before it was established', { code: 'ERR_QUIC_SESSION_CLOSED' }),
      );
    } else {
      this.#finish({ closeCode, reason });
    }
  }

  async #connect(
    target: { host: string; port: number },
    resolved: ReturnType<typeof clientOptions>,
    owner: ConnectionOwner,
  ): Promise<void> {
    this.#startHandshakeTimer(resolved.handshakeTimeout);
    let endpoint: Endpoint | undefined;
    try {
      const ip = isIP(target.host) ? target.host : await resolve(target.host);
      if (this.#state !== 'connecting') return;
      const v6 = isIP(ip) === 6;
      endpoint = await Endpoint.open(
        resolved.binding,
        { host: v6 ? '::' : '0.0.0.0', port: 0 },
        { host: ip, port: target.port },
      );
      if (this.#state !== 'connecting') {
        endpoint.closeWhenIdle();
        return;
      }
      this.#handle = endpoint.native.connect(resolved.serverName ?? null, ip, target.port);
      this.#endpoint = endpoint;
      this.#remote = { address: ip, port: target.port, family: v6 ? 'IPv6' : 'IPv4' };
      endpoint.attach(this.#handle, owner);
      endpoint.onError = (e) => {
        const refused = e.code === 'ERR_QUIC_CONNECTION_REFUSED';
        const where = `${target.host}:${target.port}`;
        this.#fail(
          refused ? new QuicTransportError(`no QUIC server is listening at ${where}`, { code: e.code, cause: e }) : e,
        );
      };
      // A client endpoint serves this one connection: its socket closes when the connection ends.
      endpoint.closeWhenIdle();
      endpoint.flushSoon();
    } catch (e) {
      endpoint?.closeWhenIdle();
      this.#fail(e instanceof QuicTransportError ? e : fromNative(e, 'ERR_QUIC_TLS_CONFIG'));
    }
  }

  #startHandshakeTimer(ms: number): void {
    this.#handshakeTimer = setTimeout(() => {
      this.#fail(
        new QuicTransportError(`the handshake did not complete within ${ms} ms`, {
          code: 'ERR_QUIC_HANDSHAKE_TIMEOUT',
        }),
      );
    }, ms);
  }

  async #openStream(bidi: boolean): Promise<number> {
    if (this.#state === 'connecting') await this.ready;
    for (;;) {
      this.#assertOpen();
      const id = bidi ? this.#nextBidi : this.#nextUni;
      const endpoint = this.#endpoint as Endpoint;
      if (endpoint.native.streamOpen(this.#handle, id)) {
        if (bidi) this.#nextBidi += 4;
        else this.#nextUni += 4;
        return id;
      }
      // The peer's stream limit is reached; a STREAMS event wakes us when it grants more.
      endpoint.flushSoon();
      await new Promise<void>((resolve, reject) => this.#creditWaiters.push({ resolve, reject }));
    }
  }

  #assertOpen(): void {
    if (this.#state === 'connected') return;
    throw this.#ended ?? new QuicTransportError('the session is closed', { code: 'ERR_QUIC_SESSION_CLOSED' });
  }

  #addStream(
    id: number,
    readable: boolean,
    writable: boolean,
  ): { readable?: ReadableStream<Uint8Array>; writable?: WritableStream<Uint8Array> } {
    const entry: StreamEntry = { sides: 0 };
    const out: { readable?: ReadableStream<Uint8Array>; writable?: WritableStream<Uint8Array> } = {};
    if (readable) {
      const r = createReceiveStream(this.#host, id);
      entry.recv = r.side;
      entry.sides++;
      out.readable = r.readable;
    }
    if (writable) {
      const w = createSendStream(this.#host, id);
      entry.send = w.side;
      entry.sides++;
      out.writable = w.writable;
    }
    this.#streams.set(id, entry);
    return out;
  }

  #sideDone(id: number): void {
    const entry = this.#streams.get(id);
    if (entry && --entry.sides === 0) this.#streams.delete(id);
  }

  #onEvent(kind: number, id: number): void {
    switch (kind) {
      case Ev.Established:
        return this.#established();
      case Ev.Readable:
        return this.#readable(id);
      case Ev.Writable:
        return this.#streams.get(id)?.send?.wake();
      case Ev.Streams:
        return this.#wakeCreditWaiters();
      case Ev.Draining:
        this.#resolveDraining();
        return this.#settle(closeResult((this.#endpoint as Endpoint).native.closeInfo(this.#handle)));
      case Ev.Closed:
        this.#resolveDraining();
        this.#settle(closeResult((this.#endpoint as Endpoint).native.closeInfo(this.#handle)));
        this.#handle = -1;
        return;
    }
  }

  #established(): void {
    if (this.#state !== 'connecting') return;
    clearTimeout(this.#handshakeTimer);
    const endpoint = this.#endpoint as Endpoint;
    const info = endpoint.native.info(this.#handle);
    this.#protocol = info.protocol;
    if (this.#isServer) {
      const peer = endpoint.native.peerAddress(this.#handle);
      this.#remote = { address: peer.host, port: peer.port, family: isIP(peer.host) === 6 ? 'IPv6' : 'IPv4' };
    }
    this.#state = 'connected';
    this.#resolveReady();
    this.#server?.onEstablished(this);
  }

  #readable(id: number): void {
    let entry = this.#streams.get(id);
    const peerInitiated = (id & 1) !== (this.#isServer ? 1 : 0);
    if (!entry && peerInitiated && this.#state === 'connected') {
      const bidi = (id & 2) === 0;
      const s = this.#addStream(id, true, bidi);
      try {
        if (bidi) this.#incomingBidi.enqueue(s as QuicBidirectionalStream);
        else this.#incomingUni.enqueue(s.readable as ReadableStream<Uint8Array>);
      } catch {
        // The user cancelled the incoming streams: nobody will read this one, so refuse it
        // (STOP_SENDING, and RESET_STREAM for our half of a bidirectional one).
        void s.readable?.cancel().catch(noop);
        void s.writable?.abort().catch(noop);
        return;
      }
      entry = this.#streams.get(id);
    }
    entry?.recv?.wake();
  }

  #wakeCreditWaiters(): void {
    const waiters = this.#creditWaiters;
    this.#creditWaiters = [];
    for (const w of waiters) w.resolve();
  }

  #settle(result: CloseResult): void {
    if (result instanceof QuicTransportError) this.#fail(result);
    else this.#finish(result);
  }

  /** Clean end: `closed` resolves, streams error with the close code and reason. */
  #finish(info: QuicCloseInfo): void {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    if (this.#state === 'connecting') {
      this.#fail(
        new QuicTransportError(
          `the peer closed the session during the handshake${info.reason ? `: ${info.reason}` : ''}`,
          {
            code: 'ERR_QUIC_SESSION_CLOSED',
            closeCode: info.closeCode,
            reason: info.reason,
          },
        ),
      );
      return;
    }
    this.#state = 'closed';
    const error = new QuicTransportError(`the session was closed${info.reason ? `: ${info.reason}` : ''}`, {
      code: 'ERR_QUIC_SESSION_CLOSED',
      closeCode: info.closeCode,
      reason: info.reason,
    });
    this.#cleanup(error, true);
    this.#resolveClosed(info);
  }

  /** Abrupt end: `ready` (if pending) and `closed` reject with `error`. */
  #fail(error: QuicTransportError): void {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    const wasConnecting = this.#state === 'connecting';
    this.#state = 'failed';
    if (this.#handle >= 0) {
      // Make sure quiche closes too, so that the endpoint can release it and free the socket.
      this.#endpoint?.native.close(this.#handle, false, 0n, Buffer.alloc(0));
      this.#endpoint?.flushSoon();
    }
    if (wasConnecting) this.#rejectReady(error);
    this.#cleanup(error, false);
    this.#rejectClosed(error);
  }

  #cleanup(error: QuicTransportError, clean: boolean): void {
    this.#ended = error;
    clearTimeout(this.#handshakeTimer);
    this.#resolveDraining();
    for (const entry of [...this.#streams.values()]) {
      entry.recv?.fail(error);
      entry.send?.fail(error);
    }
    this.#streams.clear();
    for (const w of this.#creditWaiters) w.reject(error);
    this.#creditWaiters = [];
    for (const incoming of [this.#incomingBidi, this.#incomingUni]) {
      try {
        if (clean) incoming.close();
        else incoming.error(error);
      } catch {
        // Already cancelled by the user.
      }
    }
    this.#server?.onEnd(this);
  }
}

/** Creates the server side of an accepted connection; returns it with its event owner. */
export function createServerSession(init: ServerSideInit): { session: QuicTransport; owner: ConnectionOwner } {
  const session = new QuicTransport(kServerSide as unknown as string, init as unknown as QuicTransportOptions);
  return { session, owner: init.owner as ConnectionOwner };
}

async function resolve(host: string): Promise<string> {
  try {
    return (await lookup(host)).address;
  } catch (cause) {
    throw new QuicTransportError(`cannot resolve ${host}: ${(cause as Error).message}`, {
      code: 'ERR_QUIC_DNS',
      cause,
    });
  }
}

function noop(): void {}
