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
import { Pipe, type PipeSource } from './pipe.js';
import { sendSinkOf } from './send-stream.js';
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
/** `#recv` found nothing (a READABLE event comes), or failed the stream. */
const NOTHING = -1;
const FAILED = -2;

class ReceiveSource implements UnderlyingByteSource, StreamSide, PipeSource {
  readonly type = 'bytes' as const;
  readonly #host: StreamHost;
  readonly #id: number;
  #controller!: ReadableByteStreamController;
  #waiting: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #done = false;
  /** quiche said it has nothing more for now: a READABLE event comes when it has. */
  #drained = false;
  /** The last `#recv` brought the FIN (the stream is closed right after). */
  #fin = false;
  #bytesRead = 0;
  /** Set while a `pipeTo` to a quichex send stream takes the bytes (pipe.ts). */
  pipe: Pipe | undefined = undefined;

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
    if (this.pipe) return this.pipe.run();
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
    this.pipe?.sourceErrored(error);
  }

  /** Whether a pipe can take over: open, nothing queued in the stream, no read waiting. */
  get pipeable(): boolean {
    return !this.#done && this.#controller.desiredSize === 0 && !this.#controller.byobRequest;
  }

  /** Hands the stream to `pipe`; a pull left pending by an earlier reader ends empty. */
  startPipe(pipe: Pipe): void {
    this.#waiting?.resolve();
    this.#waiting = undefined;
    pipe.run();
  }

  get ended(): boolean {
    return this.#fin;
  }

  get orphaned(): boolean {
    return !this.#host.connected;
  }

  take(): Uint8Array | undefined {
    if (this.#done) return undefined;
    const n = this.#recv(scratch);
    if (n < 0) return undefined;
    const chunk = n > 0 ? scratch.slice(0, n) : undefined;
    if (this.#fin) this.#close();
    return chunk;
  }

  stats(): QuicReceiveStreamStats {
    const { endpoint, handle } = this.#host;
    const waiting = this.#done || handle < 0 ? 0 : endpoint.native.streamReadableLen(handle, this.#id);
    return { bytesReceived: this.#bytesRead + waiting, bytesRead: this.#bytesRead };
  }

  /** Moves what quiche has into the stream. Returns false when there was nothing yet. */
  #read(): boolean {
    if (this.#done) return true;
    const request = this.#controller.byobRequest;
    const view = request?.view
      ? new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength)
      : scratch;
    const n = this.#recv(view);
    if (n === NOTHING) return false;
    if (n === FAILED) return true;
    if (request) {
      if (n > 0) request.respond(n);
      if (this.#fin) {
        this.#close();
        // After close(), respond(0) is how a pending BYOB read (this one, or the next one
        // queued behind it) learns that the stream is done.
        this.#controller.byobRequest?.respond(0);
      }
    } else {
      if (n > 0) this.#controller.enqueue(scratch.slice(0, n));
      if (this.#fin) this.#close();
    }
    return true;
  }

  /** Reads what quiche has into `view`: the byte count (and `#fin`), NOTHING or FAILED. */
  #recv(view: Uint8Array): number {
    if (this.#drained) return NOTHING;
    const { endpoint, handle } = this.#host;
    const r = endpoint.native.streamRecv(handle, this.#id, view);
    endpoint.flushSoon(); // Reading frees flow-control credit that the peer should hear of.
    if (r === StreamResult.Blocked) {
      this.#drained = true;
      return NOTHING;
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
      return FAILED;
    }
    if (r === StreamResult.Gone) {
      this.fail(new QuicTransportError('the stream is gone', { source: 'stream', code: 'ERR_QUIC_STREAM_CLOSED' }));
      return FAILED;
    }
    const n = Math.floor(r / 4);
    this.#bytesRead += n;
    this.#fin = r % 2 === 1;
    this.#drained = r % 4 >= 2;
    return n;
  }

  /** The FIN is read: the stream closes. */
  #close(): void {
    this.#finish();
    try {
      this.#controller.close();
    } catch {
      // A BYOB read holds part of an element (one byte of a Uint16Array): the streams spec's
      // close() errors the stream with a TypeError, then throws it. That error is this stream's
      // alone: it must not reach the pump, which would fail the connection.
    }
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

  /**
   * As `ReadableStream.prototype.pipeTo`. To another quichex stream (a proxy, an echo) the bytes
   * go from quiche to quiche without a promise per chunk (pipe.ts); with a `signal`, or while
   * either stream holds queued chunks, this is the runtime's own `pipeTo`.
   */
  override pipeTo(destination: WritableStream<Uint8Array>, options?: StreamPipeOptions): Promise<void> {
    const sink = sendSinkOf(destination);
    const o = options as Record<string, unknown> | undefined;
    const plain = o === undefined || (typeof o === 'object' && o !== null && o.signal === undefined);
    if (!sink || !plain || this.locked || destination.locked || !this.#source.pipeable || !sink.pipeable)
      return super.pipeTo(destination, options);
    const reader = this.getReader();
    const writer = destination.getWriter();
    // Nothing queued or in flight in the destination (its high-water mark is one chunk).
    if (writer.desiredSize !== 1) {
      reader.releaseLock();
      writer.releaseLock();
      return super.pipeTo(destination, options);
    }
    return new Promise<void>((resolve, reject) => {
      const pipe = new Pipe(
        this.#source,
        sink,
        reader,
        writer,
        { preventClose: !!o?.preventClose, preventAbort: !!o?.preventAbort, preventCancel: !!o?.preventCancel },
        { resolve, reject },
      );
      this.#source.startPipe(pipe);
    });
  }
}

/** The readable for stream `id`, and the handle its session wakes it through. */
export function createReceiveStream(host: StreamHost, id: number): { readable: QuicReceiveStream; side: StreamSide } {
  const source = new ReceiveSource(host, id);
  return { readable: new QuicReceiveStream(source), side: source };
}
