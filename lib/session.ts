/**
 * `QuicTransport`: one QUIC connection, shaped like the W3C `WebTransport` interface
 * (https://w3c.github.io/webtransport/#web-transport). Clients construct it from a
 * `quic://host:port` URL; servers hand out the same class from `QuicServer.accept()`.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { channels } from './diagnostics.js';
import { Endpoint, type ConnectionOwner } from './endpoint.js';
import { MAX_QUIC_CODE, QuicTransportError, type QuicCode } from './errors.js';
import { Ev, closeResult, fromNative, snapshotStats, statsByName, type BindingStats } from './native.js';
import { clientOptions, signalOption, type QuicTransportOptions, type ResolvedDatagrams } from './options.js';
import { Settlement } from './settlement.js';
import { QuicDatagramDuplexStream, type DatagramHost, type QuicDatagramStats } from './streams/datagrams.js';
import { LazyReadable } from './streams/incoming.js';
import { createReceiveStream, type QuicReceiveStream } from './streams/receive-stream.js';
import { createSendStream, urgencyOf, validSendOrder, type QuicSendStream } from './streams/send-stream.js';
import type { StreamHost, StreamSide } from './streams/stream-host.js';

/** How a session ended cleanly. */
export interface QuicCloseInfo {
  closeCode: QuicCode;
  reason: string;
}

/** A bidirectional stream: bytes in, bytes out. */
export interface QuicBidirectionalStream {
  readable: QuicReceiveStream;
  writable: QuicSendStream;
}

/** Options of `createBidirectionalStream()` and `createUnidirectionalStream()`. */
export interface QuicStreamOptions {
  /** Streams with a higher sendOrder are sent first. Default 0. */
  sendOrder?: number;
  /**
   * When the peer's stream limit is reached: `false` (default, as in WebTransport) rejects at
   * once with `ERR_QUIC_STREAM_LIMIT`; `true` waits until the peer grants more (MAX_STREAMS).
   */
  waitUntilAvailable?: boolean;
  /** Stops waiting for the stream (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * Connection statistics: the W3C `WebTransportConnectionStats` fields, then what quiche knows
 * besides. Times in milliseconds, rates in bits per second unless the name says bytes.
 */
export interface QuicTransportStats {
  bytesSent: number;
  packetsSent: number;
  bytesLost: number;
  packetsLost: number;
  bytesReceived: number;
  packetsReceived: number;
  smoothedRtt: number;
  rttVariation: number;
  /** `null` before the first RTT sample. */
  minRtt: number | null;
  /** quiche's delivery-rate estimate in bits per second; `null` before it has one. */
  estimatedSendRate: number | null;
  /** Some writer (stream or datagrams) waits for flow or congestion control to let more out. */
  atSendCapacity: boolean;
  datagrams: QuicDatagramStats;
  /** Bytes in packets the peer acknowledged. */
  bytesAcknowledged: number;
  packetsRetransmitted: number;
  /** Packets declared lost that turned out to have arrived. */
  packetsSpuriouslyLost: number;
  streamBytesRetransmitted: number;
  /** `null` before the first RTT sample. */
  maxRtt: number | null;
  /** Congestion window, bytes. */
  congestionWindow: number;
  /** Path MTU in use, bytes. */
  pathMtu: number;
  /** Delivery rate, bytes per second. */
  deliveryRate: number;
  /** Probe timeouts so far. */
  ptoCount: number;
  datagramsSent: number;
  datagramsReceived: number;
  /** Network paths the connection has used. */
  paths: number;
  streamsResetLocal: number;
  streamsResetRemote: number;
  streamsStoppedLocal: number;
  streamsStoppedRemote: number;
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

/** What the server sides of a `QuicServer`'s connections share: one object per server. */
export interface ServerHooks {
  endpoint: Endpoint;
  handshakeTimeout: number;
  datagrams: ResolvedDatagrams;
  onEstablished(session: QuicTransport): void;
  onEnd(session: QuicTransport): void;
}

/** A session's private handlers, reachable from `SessionLink`; set in `QuicTransport`'s static block. */
let onEventOf: (session: QuicTransport, kind: number, streamId: number) => void;
let onSocketErrorOf: (session: QuicTransport, error: QuicTransportError) => void;
let sideDoneOf: (session: QuicTransport, streamId: number) => void;
let linkOf: (session: QuicTransport) => SessionLink;

/**
 * A session's link to its connection: what its streams (once connected), its datagrams and its
 * endpoint need of it. Plain fields the session keeps current and prototype methods, so that it
 * costs one small object per session (accessors or closures would cost a hidden class or a
 * context each).
 */
class SessionLink implements DatagramHost, ConnectionOwner {
  endpoint: Endpoint | undefined = undefined;
  handle = -1;
  connected = false;
  readonly session: QuicTransport;

  constructor(session: QuicTransport) {
    this.session = session;
  }

  sideDone(id: number): void {
    sideDoneOf(this.session, id);
  }

  onEvent(kind: number, streamId: number): void {
    onEventOf(this.session, kind, streamId);
  }

  onSocketError(error: QuicTransportError): void {
    onSocketErrorOf(this.session, error);
  }
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
  /** Unreliable datagrams (RFC 9221), shaped like W3C `WebTransportDatagramDuplexStream`. */
  readonly datagrams: QuicDatagramDuplexStream;

  #state: State = 'connecting';
  readonly #link = new SessionLink(this);
  readonly #isServer: boolean;
  readonly #streams = new Map<number, StreamEntry>();
  #nextBidi: number;
  #nextUni: number;
  /** Stream creations waiting for the peer's credit; made on first use. */
  #creditWaiters: Set<{ resolve: () => void; reject: (e: unknown) => void }> | undefined;
  #protocol = '';
  #info: { serverName?: string; peerCertificateChain: Uint8Array[]; resumed: boolean; traceId: string } | undefined;
  /** The last counters read before the connection was released. */
  #finalStats: Float64Array | undefined;
  readonly #openedAt = performance.now();
  #signal: { signal: AbortSignal; onAbort: () => void } | undefined;
  #remote: QuicAddress | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #server: ServerHooks | undefined;
  /** A client's `host:port`, for error messages. */
  #target: string | undefined;
  /** Why the session ended: what later calls on it throw. */
  #ended: QuicTransportError | undefined;
  readonly #ready = new Settlement<void>();
  readonly #closed = new Settlement<QuicCloseInfo>();
  readonly #draining = new Settlement<void>();
  readonly #incomingBidi = new LazyReadable<QuicBidirectionalStream>(refuseBidi);
  readonly #incomingUni = new LazyReadable<QuicReceiveStream>(refuseUni);

  /**
   * Connects to `url` (`quic://host:port`; the port defaults to 443). Throws a `TypeError`
   * for a bad URL or option; everything later is reported through `ready` and `closed`.
   */
  constructor(url: string | URL, options?: QuicTransportOptions) {
    const accepted = (url as unknown) === kServerSide ? (options as unknown as ServerSide) : undefined;
    const server = accepted?.hooks;
    const target = server ? undefined : parseUrl(url);
    const resolved = target ? clientOptions(options, target.host) : undefined;
    this.#isServer = server !== undefined;
    this.#nextBidi = this.#isServer ? 1 : 0;
    this.#nextUni = this.#isServer ? 3 : 2;
    this.datagrams = new QuicDatagramDuplexStream(this.#link, (server ?? resolved)?.datagrams as ResolvedDatagrams);
    if (accepted && server) {
      this.#server = server;
      this.#link.endpoint = server.endpoint;
      this.#link.handle = accepted.handle;
      this.#startHandshakeTimer(server.handshakeTimeout);
    } else if (target) this.#target = `${target.host}:${target.port}`;
    // A subscriber may close the session at once: a server session is whole by now, and a client
    // starts connecting only if it is still open.
    if (channels.sessionOpen.hasSubscribers) channels.sessionOpen.publish({ session: this, side: this.#side });
    if (target && resolved && this.#state === 'connecting') {
      const signal = resolved.signal;
      if (signal?.aborted) this.#abort(signal.reason);
      else {
        if (signal) {
          const onAbort = () => this.#abort(signal.reason);
          signal.addEventListener('abort', onAbort, { once: true });
          this.#signal = { signal, onAbort };
        }
        void this.#connect(target, resolved);
      }
    }
  }

  static {
    onEventOf = (session, kind, id) => session.#onEvent(kind, id);
    onSocketErrorOf = (session, error) => session.#onSocketError(error);
    sideDoneOf = (session, id) => session.#sideDone(id);
    linkOf = (session) => session.#link;
  }

  #onSocketError(e: QuicTransportError): void {
    const refused = e.code === 'ERR_QUIC_CONNECTION_REFUSED';
    this.#fail(
      refused
        ? new QuicTransportError(`no QUIC server is listening at ${this.#target ?? 'the peer'}`, {
            code: e.code,
            cause: e,
          })
        : e,
    );
  }

  get #side(): 'client' | 'server' {
    return this.#isServer ? 'server' : 'client';
  }

  #abort(reason: unknown): void {
    this.#fail(new QuicTransportError('the session was aborted', { code: 'ERR_QUIC_ABORTED', cause: reason }));
  }

  /** Resolves once the handshake is complete; rejects if it fails. */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Resolves with `{ closeCode, reason }` on a clean close by either side; rejects on failure. */
  get closed(): Promise<QuicCloseInfo> {
    return this.#closed.promise;
  }

  /** Resolves when the connection starts to close (the peer's CONNECTION_CLOSE arrived or we closed). */
  get draining(): Promise<void> {
    return this.#draining.promise;
  }

  /** Bidirectional streams the peer opens. */
  get incomingBidirectionalStreams(): ReadableStream<QuicBidirectionalStream> {
    return this.#incomingBidi.stream;
  }

  /** Unidirectional streams the peer opens. */
  get incomingUnidirectionalStreams(): ReadableStream<QuicReceiveStream> {
    return this.#incomingUni.stream;
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
    return this.#link.endpoint?.local;
  }

  /** The server name (SNI) the client sent, once `ready`. */
  get serverName(): string | undefined {
    return this.#info?.serverName;
  }

  /** The peer's certificate chain as it sent it (DER, leaf first), once `ready`; empty if it sent none. */
  get peerCertificateChain(): Uint8Array[] {
    // Copies as plain Uint8Arrays (the binding's are Buffers), made when asked for.
    return this.#info ? this.#info.peerCertificateChain.map((der) => new Uint8Array(der)) : [];
  }

  /** Whether the TLS session was resumed (quichex does not resume sessions yet: false). */
  get resumed(): boolean {
    return this.#info?.resumed ?? false;
  }

  /** quiche's trace id of the connection (names qlog files), once `ready`. */
  get traceId(): string | undefined {
    return this.#info?.traceId;
  }

  /**
   * Opens a bidirectional stream. When the peer's stream limit is reached it rejects with
   * `ERR_QUIC_STREAM_LIMIT`, or with `waitUntilAvailable: true` waits for more credit.
   */
  async createBidirectionalStream(options?: QuicStreamOptions): Promise<QuicBidirectionalStream> {
    const o = streamOptions(options);
    const id = await this.#openStream(true, o);
    const entry = this.#addStream(id, true, true, o.sendOrder);
    return { readable: entry.readable as QuicReceiveStream, writable: entry.writable as QuicSendStream };
  }

  /** Opens a unidirectional (send-only) stream; options as for `createBidirectionalStream`. */
  async createUnidirectionalStream(options?: QuicStreamOptions): Promise<QuicSendStream> {
    const o = streamOptions(options);
    const id = await this.#openStream(false, o);
    return this.#addStream(id, false, true, o.sendOrder).writable as QuicSendStream;
  }

  /** Connection statistics (see `QuicTransportStats`); after the end, the last counters. */
  async getStats(): Promise<QuicTransportStats> {
    const endpoint = this.#link.endpoint;
    const raw =
      endpoint && this.#link.handle >= 0 ? snapshotStats(endpoint.native, this.#link.handle) : this.#finalStats;
    let blocked = this.datagrams.blocked;
    for (const entry of this.#streams.values()) blocked ||= entry.send?.blocked === true;
    return transportStats(raw, blocked, this.datagrams.counts);
  }

  /** `await using transport = …`: closes the session and waits until it is closed. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.closed.catch(noop);
  }

  /**
   * Closes the connection with an application close code and reason. Open streams error with
   * `ERR_QUIC_SESSION_CLOSED`; `closed` resolves with what was sent.
   */
  close(options?: QuicCloseOptions): void {
    const { code, closeCode, reason, bytes } = closeArgs(options);
    if (this.#state === 'closed' || this.#state === 'failed') return;
    if (this.#link.handle >= 0) {
      this.#link.endpoint?.native.close(this.#link.handle, true, code, bytes);
      this.#link.endpoint?.flushSoon();
    }
    if (this.#state === 'connecting') {
      this.#fail(
        new QuicTransportError('the session was closed before it was established', { code: 'ERR_QUIC_SESSION_CLOSED' }),
      );
    } else {
      this.#finish({ closeCode, reason });
    }
  }

  async #connect(target: { host: string; port: number }, resolved: ReturnType<typeof clientOptions>): Promise<void> {
    this.#startHandshakeTimer(resolved.handshakeTimeout);
    let endpoint: Endpoint | undefined;
    try {
      const ip = isIP(target.host) ? target.host : await resolve(target.host);
      if (this.#state !== 'connecting') return;
      const v6 = isIP(ip) === 6;
      do {
        endpoint = await Endpoint.client(resolved.binding, { host: ip, port: target.port });
        if (this.#state !== 'connecting') {
          endpoint.closeWhenIdle();
          return;
        }
        // Another session's last connection may have closed the shared socket meanwhile.
      } while (!endpoint.usable);
      this.#link.handle = endpoint.native.connect(resolved.serverName ?? null, ip, target.port);
      this.#link.endpoint = endpoint;
      this.#remote = { address: ip, port: target.port, family: v6 ? 'IPv6' : 'IPv4' };
      endpoint.attach(this.#link.handle, this.#link);
      // Client endpoints are shared by the connections to one server and close with the last one.
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

  async #openStream(bidi: boolean, options: ResolvedStreamOptions): Promise<number> {
    const { signal } = options;
    if (this.#state === 'connecting') await this.ready;
    for (;;) {
      signal?.throwIfAborted();
      this.#assertOpen();
      const id = bidi ? this.#nextBidi : this.#nextUni;
      const endpoint = this.#link.endpoint as Endpoint;
      // The id is taken only once quiche has opened the stream: a refusal leaves it for the next try.
      if (endpoint.native.streamOpen(this.#link.handle, id, urgencyOf(options.sendOrder))) {
        if (bidi) this.#nextBidi += 4;
        else this.#nextUni += 4;
        return id;
      }
      const kind = bidi ? 'bidirectional' : 'unidirectional';
      if (!options.waitUntilAvailable) {
        throw new QuicTransportError(`the peer's limit of ${kind} streams is reached`, {
          code: 'ERR_QUIC_STREAM_LIMIT',
        });
      }
      // A STREAMS event wakes us when the peer grants more.
      endpoint.flushSoon();
      await this.#creditGranted(signal);
    }
  }

  #creditGranted(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.#creditWaiters?.delete(waiter);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter = {
        resolve: () => (done(), resolve()),
        reject: (e: unknown) => (done(), reject(e)),
      };
      const onAbort = () => waiter.reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      (this.#creditWaiters ??= new Set()).add(waiter);
    });
  }

  #assertOpen(): void {
    if (this.#state === 'connected') return;
    throw this.#ended ?? new QuicTransportError('the session is closed', { code: 'ERR_QUIC_SESSION_CLOSED' });
  }

  #addStream(
    id: number,
    readable: boolean,
    writable: boolean,
    sendOrder = 0,
  ): { readable?: QuicReceiveStream; writable?: QuicSendStream } {
    const entry: StreamEntry = { sides: 0 };
    const out: { readable?: QuicReceiveStream; writable?: QuicSendStream } = {};
    if (readable) {
      const r = createReceiveStream(this.#link as StreamHost, id);
      entry.recv = r.side;
      entry.sides++;
      out.readable = r.readable;
    }
    if (writable) {
      const w = createSendStream(this.#link as StreamHost, id, sendOrder);
      entry.send = w.side;
      entry.sides++;
      out.writable = w.writable;
    }
    this.#streams.set(id, entry);
    if (channels.streamOpen.hasSubscribers) {
      const initiator = (id & 1) === (this.#isServer ? 1 : 0) ? 'local' : 'remote';
      channels.streamOpen.publish({ session: this, streamId: id, bidirectional: (id & 2) === 0, initiator });
    }
    return out;
  }

  #sideDone(id: number): void {
    const entry = this.#streams.get(id);
    if (entry && --entry.sides === 0) {
      this.#streams.delete(id);
      if (channels.streamClose.hasSubscribers) channels.streamClose.publish({ session: this, streamId: id });
    }
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
      case Ev.Datagrams:
        return this.datagrams.onDatagrams();
      case Ev.DatagramsWritable:
        return this.datagrams.onWritable();
      case Ev.Draining:
        this.#draining.resolve();
        return this.#settleFromNative();
      case Ev.Closed: {
        this.#draining.resolve();
        this.#finalStats = snapshotStats((this.#link.endpoint as Endpoint).native, this.#link.handle);
        this.#settleFromNative();
        this.#link.handle = -1;
        return;
      }
    }
  }

  #established(): void {
    if (this.#state !== 'connecting') return;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    const endpoint = this.#link.endpoint as Endpoint;
    const info = endpoint.native.info(this.#link.handle);
    this.#protocol = info.protocol;
    this.#info = {
      serverName: info.serverName ?? undefined,
      peerCertificateChain: info.peerCertificateChain,
      resumed: info.resumed,
      traceId: info.traceId,
    };
    if (this.#isServer) {
      const peer = endpoint.peerAddress(this.#link.handle);
      this.#remote = { address: peer.host, port: peer.port, family: isIP(peer.host) === 6 ? 'IPv6' : 'IPv4' };
    }
    this.#state = 'connected';
    this.#link.connected = true;
    this.#ready.resolve();
    this.datagrams.onConnected();
    if (channels.sessionHandshake.hasSubscribers) {
      const durationMs = performance.now() - this.#openedAt;
      channels.sessionHandshake.publish({ session: this, side: this.#side, protocol: this.#protocol, durationMs });
    }
    this.#server?.onEstablished(this);
  }

  #readable(id: number): void {
    let entry = this.#streams.get(id);
    const peerInitiated = (id & 1) !== (this.#isServer ? 1 : 0);
    if (!entry && peerInitiated && this.#state === 'connected') {
      const bidi = (id & 2) === 0;
      const s = this.#addStream(id, true, bidi);
      // Refused when the user cancelled the incoming streams: nobody would read it.
      const queued = bidi
        ? this.#incomingBidi.enqueue(s as QuicBidirectionalStream)
        : this.#incomingUni.enqueue(s.readable as QuicReceiveStream);
      if (!queued) return;
      entry = this.#streams.get(id);
    }
    entry?.recv?.wake();
  }

  #wakeCreditWaiters(): void {
    for (const w of [...(this.#creditWaiters ?? [])]) w.resolve();
  }

  /** Ends the session the way quiche says the connection ended, unless it has ended already. */
  #settleFromNative(): void {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    const result = closeResult((this.#link.endpoint as Endpoint).native.closeInfo(this.#link.handle));
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
    this.#link.connected = false;
    const error = new QuicTransportError(`the session was closed${info.reason ? `: ${info.reason}` : ''}`, {
      code: 'ERR_QUIC_SESSION_CLOSED',
      closeCode: info.closeCode,
      reason: info.reason,
    });
    this.#cleanup(error, true);
    this.#closed.resolve(info);
    if (channels.sessionClose.hasSubscribers)
      channels.sessionClose.publish({ session: this, side: this.#side, closeInfo: info });
  }

  /** Abrupt end: `ready` (if pending) and `closed` reject with `error`. */
  #fail(error: QuicTransportError): void {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    const wasConnecting = this.#state === 'connecting';
    this.#state = 'failed';
    this.#link.connected = false;
    if (this.#link.handle >= 0) {
      // Make sure quiche closes too, so that the endpoint can release it and free the socket.
      this.#link.endpoint?.native.close(this.#link.handle, false, 0n, Buffer.alloc(0));
      this.#link.endpoint?.flushSoon();
    }
    if (wasConnecting) this.#ready.reject(error);
    this.#cleanup(error, false);
    this.#closed.reject(error);
    if (channels.sessionClose.hasSubscribers) channels.sessionClose.publish({ session: this, side: this.#side, error });
  }

  #cleanup(error: QuicTransportError, clean: boolean): void {
    this.#ended = error;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#draining.resolve();
    for (const entry of [...this.#streams.values()]) {
      entry.recv?.fail(error);
      entry.send?.fail(error);
    }
    this.#streams.clear();
    for (const w of [...(this.#creditWaiters ?? [])]) w.reject(error);
    this.datagrams.end(error, clean);
    if (this.#signal) this.#signal.signal.removeEventListener('abort', this.#signal.onAbort);
    this.#signal = undefined;
    this.#incomingBidi.end(clean ? undefined : error);
    this.#incomingUni.end(clean ? undefined : error);
    this.#server?.onEnd(this);
  }
}

interface ServerSide {
  hooks: ServerHooks;
  handle: number;
}

/** Creates the server side of an accepted connection; returns it with its event owner. */
export function createServerSession(
  hooks: ServerHooks,
  handle: number,
): { session: QuicTransport; owner: ConnectionOwner } {
  const init: ServerSide = { hooks, handle };
  const session = new QuicTransport(kServerSide as unknown as string, init as unknown as QuicTransportOptions);
  return { session, owner: linkOf(session) };
}

interface ResolvedStreamOptions {
  sendOrder: number;
  waitUntilAvailable: boolean;
  signal?: AbortSignal;
}

function streamOptions(options: unknown): ResolvedStreamOptions {
  if (options === undefined) return { sendOrder: 0, waitUntilAvailable: false };
  if (typeof options !== 'object' || options === null) throw new TypeError('stream options must be an object');
  const o = options as Record<string, unknown>;
  if (o.waitUntilAvailable !== undefined && typeof o.waitUntilAvailable !== 'boolean')
    throw new TypeError(`options.waitUntilAvailable must be a boolean, got ${typeof o.waitUntilAvailable}`);
  return {
    sendOrder: validSendOrder(o.sendOrder),
    waitUntilAvailable: o.waitUntilAvailable === true,
    signal: signalOption(o.signal, 'options.signal'),
  };
}

function transportStats(
  snapshot: Float64Array | undefined,
  atSendCapacity: boolean,
  counts: Omit<QuicDatagramStats, 'lostOutgoing'>,
): QuicTransportStats {
  // Before the connection exists nothing was sent or received: zeros are the truth then.
  const s: Partial<BindingStats> = snapshot ? statsByName(snapshot) : {};
  const n = (v: number | undefined) => v ?? 0;
  const sample = (v: number | undefined) => (v === undefined || v < 0 ? null : v);
  return {
    bytesSent: n(s.bytesSent),
    packetsSent: n(s.packetsSent),
    bytesLost: n(s.bytesLost),
    packetsLost: n(s.packetsLost),
    bytesReceived: n(s.bytesReceived),
    packetsReceived: n(s.packetsReceived),
    smoothedRtt: n(s.smoothedRtt),
    rttVariation: n(s.rttVariation),
    minRtt: sample(s.minRtt),
    estimatedSendRate: s.deliveryRate ? s.deliveryRate * 8 : null,
    atSendCapacity,
    datagrams: {
      ...counts,
      droppedIncoming: counts.droppedIncoming + n(s.datagramsDroppedNative),
      lostOutgoing: n(s.datagramsLost),
    },
    bytesAcknowledged: n(s.bytesAcknowledged),
    packetsRetransmitted: n(s.packetsRetransmitted),
    packetsSpuriouslyLost: n(s.packetsSpuriouslyLost),
    streamBytesRetransmitted: n(s.streamBytesRetransmitted),
    maxRtt: sample(s.maxRtt),
    congestionWindow: n(s.congestionWindow),
    pathMtu: n(s.pathMtu),
    deliveryRate: n(s.deliveryRate),
    ptoCount: n(s.ptoCount),
    datagramsSent: n(s.datagramsSent),
    datagramsReceived: n(s.datagramsReceived),
    paths: n(s.paths),
    streamsResetLocal: n(s.streamsResetLocal),
    streamsResetRemote: n(s.streamsResetRemote),
    streamsStoppedLocal: n(s.streamsStoppedLocal),
    streamsStoppedRemote: n(s.streamsStoppedRemote),
  };
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

/** A peer stream nobody will read: STOP_SENDING, and RESET_STREAM for our half. */
function refuseBidi(stream: QuicBidirectionalStream): void {
  void stream.readable.cancel().catch(noop);
  void stream.writable.abort().catch(noop);
}

function refuseUni(stream: QuicReceiveStream): void {
  void stream.cancel().catch(noop);
}
