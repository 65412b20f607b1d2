/**
 * The receive side of a QUIC stream as a `ReadableStream` of type `'bytes'`.
 *
 * Pull-driven, as the streams spec's backpressure example: quiche is read only inside `pull()`
 * (or when a pull is pending and quiche reports data), so an unread stream keeps its bytes in
 * quiche, whose flow control (MAX_STREAM_DATA) stops the peer. BYOB readers get quiche's bytes
 * written straight into their buffer; default readers get a right-sized copy.
 */
import { QuicTransportError, codeFromWire, streamCodeOf } from '../errors.js';
import { StreamResult } from '../native.js';
import { publishReset, type StreamHost, type StreamSide } from './stream-host.js';

/** Counters of a receive stream, as in W3C `WebTransportReceiveStreamStats`. */
export interface QuicReceiveStreamStats {
  /** Bytes received in order so far: read, or waiting to be read. */
  bytesReceived: number;
  /** Bytes handed to the reader. */
  bytesRead: number;
}

/** Largest chunk a default reader gets in one read. */
const CHUNK = 64 * 1024;
/** Shared by every stream: reads are synchronous, so one scratch buffer is enough. */
const scratch = new Uint8Array(CHUNK);

class ReceiveSource implements UnderlyingByteSource, StreamSide {
  readonly type = 'bytes' as const;
  readonly #host: StreamHost;
  readonly #id: number;
  #controller!: ReadableByteStreamController;
  #waiting: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #done = false;
  /** quiche said it has nothing more for now: a READABLE event comes when it has. */
  #drained = false;
  #bytesRead = 0;

  readonly blocked = false;

  constructor(host: StreamHost, id: number) {
    this.#host = host;
    this.#id = id;
  }

  start(controller: ReadableByteStreamController): void {
    this.#controller = controller;
  }

  pull(): Promise<void> | undefined {
    if (this.#read()) return undefined;
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  cancel(reason: unknown): void {
    if (this.#done) return;
    this.#finish();
    // STOP_SENDING with the reason's streamErrorCode, as W3C WebTransport does.
    const code = streamCodeOf(reason);
    this.#host.endpoint.native.streamShutdown(this.#host.handle, this.#id, false, code);
    publishReset(this.#host, this.#id, 'receive', 'local', code);
    this.#host.endpoint.flushSoon();
  }

  wake(): void {
    this.#drained = false;
    const waiting = this.#waiting;
    if (!waiting || !this.#read()) return;
    // #read() may have failed the stream, which already settled the pull.
    if (this.#waiting === waiting) {
      this.#waiting = undefined;
      waiting.resolve();
    }
  }

  fail(error: unknown): void {
    if (this.#done) return;
    this.#finish();
    this.#controller.error(error);
    this.#waiting?.reject(error);
    this.#waiting = undefined;
  }

  stats(): QuicReceiveStreamStats {
    const { endpoint, handle } = this.#host;
    const waiting = this.#done || handle < 0 ? 0 : endpoint.native.streamReadableLen(handle, this.#id);
    return { bytesReceived: this.#bytesRead + waiting, bytesRead: this.#bytesRead };
  }

  /** Moves what quiche has into the stream. Returns false when there was nothing yet. */
  #read(): boolean {
    if (this.#done) return true;
    if (this.#drained) return false;
    const { endpoint, handle } = this.#host;
    const request = this.#controller.byobRequest;
    const view = request?.view
      ? new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength)
      : scratch;
    const r = endpoint.native.streamRecv(handle, this.#id, view);
    endpoint.flushSoon(); // Reading frees flow-control credit that the peer should hear of.
    if (r === StreamResult.Blocked) {
      this.#drained = true;
      return false;
    }
    if (r === StreamResult.PeerAborted) {
      const code = codeFromWire(endpoint.native.lastCode(handle));
      publishReset(this.#host, this.#id, 'receive', 'peer', code);
      this.fail(
        new QuicTransportError('the peer reset the stream', {
          source: 'stream',
          code: 'ERR_QUIC_STREAM_RESET',
          streamErrorCode: code,
        }),
      );
      return true;
    }
    if (r === StreamResult.Gone) {
      this.fail(new QuicTransportError('the stream is gone', { source: 'stream', code: 'ERR_QUIC_STREAM_CLOSED' }));
      return true;
    }
    const n = Math.floor(r / 4);
    this.#bytesRead += n;
    const fin = r % 2 === 1;
    this.#drained = r % 4 >= 2;
    if (request) {
      if (n > 0) request.respond(n);
      if (fin) {
        this.#finish();
        this.#controller.close();
        // After close(), respond(0) is how a pending BYOB read (this one, or the next one
        // queued behind it) learns that the stream is done.
        this.#controller.byobRequest?.respond(0);
      }
    } else {
      if (n > 0) this.#controller.enqueue(scratch.slice(0, n));
      if (fin) {
        this.#finish();
        this.#controller.close();
      }
    }
    return true;
  }

  #finish(): void {
    this.#done = true;
    this.#host.sideDone(this.#id);
  }
}

/** The receive side of a stream: a byte `ReadableStream` with `getStats()`. */
export class QuicReceiveStream extends ReadableStream<Uint8Array> {
  readonly #source: ReceiveSource;

  /** @internal */
  constructor(source: ReceiveSource) {
    super(source as unknown as UnderlyingSource<Uint8Array>);
    this.#source = source;
  }

  /** Counters of this stream. */
  getStats(): Promise<QuicReceiveStreamStats> {
    return Promise.resolve(this.#source.stats());
  }
}

/** The readable for stream `id`, and the handle its session wakes it through. */
export function createReceiveStream(host: StreamHost, id: number): { readable: QuicReceiveStream; side: StreamSide } {
  const source = new ReceiveSource(host, id);
  return { readable: new QuicReceiveStream(source), side: source };
}
