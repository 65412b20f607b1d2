/** `QuicServer`: accepts QUIC connections on one UDP socket and hands out sessions. */
import { isIP } from 'node:net';
import { channels } from './diagnostics.js';
import { Endpoint } from './endpoint.js';
import { QuicTransportError } from './errors.js';
import { fromNative } from './native.js';
import { serverOptions, signalOption, type QuicServerOptions } from './options.js';
import { createServerSession, type QuicAddress, type QuicTransport, type ServerHooks } from './session.js';

type State = 'new' | 'listening' | 'closing' | 'closed';

/** A certificate hash, as `serverCertificateHashes` takes it. */
export interface QuicCertificateHash {
  algorithm: 'sha-256';
  value: Uint8Array;
}

/** A QUIC server. `listen()`, then `for await (const session of server)`. */
export class QuicServer {
  readonly #options: ReturnType<typeof serverOptions>;
  #state: State = 'new';
  #endpoint: Endpoint | undefined;
  /** The socket being bound by `listen()`: a `close()` meanwhile waits for it, then closes it. */
  #binding: Promise<unknown> | undefined;
  #closing: Promise<void> | undefined;
  readonly #sessions = new Set<QuicTransport>();
  readonly #ready: QuicTransport[] = [];
  readonly #waiters = new Set<(session: QuicTransport | null) => void>();

  /** Validates `options` (throwing `TypeError`/`RangeError`); nothing is bound until `listen()`. */
  constructor(options?: QuicServerOptions) {
    this.#options = serverOptions(options);
  }

  /** Binds the socket and starts accepting connections. */
  async listen(): Promise<void> {
    if (this.#state !== 'new')
      throw new QuicTransportError(`listen() called on a ${this.#state} server`, { code: 'ERR_QUIC_SOCKET' });
    this.#state = 'listening';
    const { binding, host, port, handshakeTimeout, datagrams } = this.#options;
    let endpoint: Endpoint;
    const opening = Endpoint.open(binding, { host, port });
    this.#binding = opening.catch(() => {});
    try {
      endpoint = await opening;
    } catch (e) {
      this.#state = 'closed';
      throw e instanceof QuicTransportError ? e : fromNative(e, 'ERR_QUIC_TLS_CONFIG');
    }
    this.#endpoint = endpoint;
    const hooks: ServerHooks = {
      endpoint,
      handshakeTimeout,
      datagrams,
      onEstablished: (s) => this.#deliver(s),
      onEnd: (s) => this.#sessions.delete(s),
    };
    endpoint.onAccept = (handle) => {
      const { session, owner } = createServerSession(hooks, handle);
      this.#sessions.add(session);
      // A connection the native side accepted just before close(): close it with the rest.
      if (this.#state !== 'listening') session.close({ closeCode: 0, reason: 'server closing' });
      return owner;
    };
    endpoint.onRefused = (handle) => {
      if (!channels.serverReject.hasSubscribers) return;
      const peer = endpoint.peerAddress(handle);
      const family = isIP(peer.host) === 6 ? 'IPv6' : 'IPv4';
      channels.serverReject.publish({
        server: this,
        remoteAddress: { address: peer.host, port: peer.port, family },
        reason: 'max-connections',
      });
    };
  }

  /** The bound address. */
  get address(): QuicAddress {
    if (!this.#endpoint) throw new QuicTransportError('the server is not listening', { code: 'ERR_QUIC_SOCKET' });
    return { ...this.#endpoint.local };
  }

  /** SHA-256 hashes of the certificate in use, ready for a client's `serverCertificateHashes`. */
  get certificateHashes(): QuicCertificateHash[] {
    const hash = this.#endpoint?.native.certificateHash;
    return hash ? [{ algorithm: 'sha-256', value: new Uint8Array(hash) }] : [];
  }

  /** The certificate in use (PEM), e.g. to pass to a client's `ca`. */
  get certificate(): string | undefined {
    return this.#endpoint?.native.certificatePem ?? undefined;
  }

  /**
   * The next established session, or `null` once the server is closed (or closing). Asked before
   * `listen()`, it waits for the first session. Aborting `signal` rejects the wait with the
   * signal's reason (a session that arrives later stays queued).
   */
  accept(options?: { signal?: AbortSignal }): Promise<QuicTransport | null> {
    if (options !== undefined && (typeof options !== 'object' || options === null))
      throw new TypeError('accept() options must be an object');
    const signal = signalOption(options?.signal, 'options.signal');
    if (signal?.aborted) return Promise.reject(signal.reason);
    const session = this.#ready.shift();
    if (session) return Promise.resolve(session);
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const waiter = (s: QuicTransport | null) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(s);
      };
      const onAbort = () => {
        this.#waiters.delete(waiter);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<QuicTransport, void, undefined> {
    for (;;) {
      const session = await this.accept();
      if (!session) return;
      yield session;
    }
  }

  /**
   * Stops accepting, closes every session (close code 0, reason `'server closing'`), and
   * resolves once the socket is closed.
   */
  async close(): Promise<void> {
    if (this.#state === 'new' || this.#state === 'listening') {
      const listening = this.#state === 'listening';
      this.#state = listening ? 'closing' : 'closed';
      for (const resolve of [...this.#waiters]) resolve(null);
      this.#waiters.clear();
      this.#ready.length = 0;
      if (listening) this.#closing = this.#closeListening();
    }
    await this.#closing;
    this.#state = 'closed';
  }

  async #closeListening(): Promise<void> {
    await this.#binding; // listen() may still be binding the socket
    for (const session of [...this.#sessions]) session.close({ closeCode: 0, reason: 'server closing' });
    const endpoint = this.#endpoint;
    endpoint?.closeWhenIdle();
    endpoint?.flushSoon();
    await endpoint?.closed;
  }

  /** `await using server = …`: closes the server (see `close()`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #deliver(session: QuicTransport): void {
    if (channels.serverAccept.hasSubscribers) channels.serverAccept.publish({ server: this, session });
    const waiter = this.#waiters.values().next().value;
    if (waiter) {
      this.#waiters.delete(waiter);
      waiter(session);
    } else this.#ready.push(session);
  }
}
