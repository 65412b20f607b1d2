/**
 * `pipeTo` from a quichex receive stream to a quichex send stream without the streams'
 * machinery in between: each time quiche has bytes for the source, they go straight to the
 * destination's sink, with no read request, promise or queue per chunk. What a pipe must do is
 * the streams spec's ReadableStreamPipeTo (https://streams.spec.whatwg.org/#readable-stream-pipe-to),
 * which lets an implementation move the bytes by other means while both streams are locked:
 * backpressure (the source is not read while the destination waits for room, so quiche's flow
 * control stops the peer), the FIN closing the destination unless `preventClose`, an error of the
 * source aborting the destination unless `preventAbort` (RESET_STREAM with its code), an error of
 * the destination cancelling the source unless `preventCancel` (STOP_SENDING), and the locks
 * released at the end. A pipe with an `AbortSignal`, or between streams that already hold queued
 * chunks, takes the runtime's own `pipeTo` (see `QuicReceiveStream.pipeTo`).
 */

/** The source's side, as a pipe drives it (receive-stream.ts). */
export interface PipeSource {
  /** What quiche has for the stream now, as a chunk of its own; undefined when nothing is there. */
  take(): Uint8Array | undefined;
  /** The stream ended at the peer's FIN (and is closed). */
  readonly ended: boolean;
  /** The stream's session has ended: the session fails the stream itself. */
  readonly orphaned: boolean;
  pipe: Pipe | undefined;
}

/** The destination's side (send-stream.ts). */
export interface PipeSink {
  /** As `UnderlyingSink.write`: undefined once taken, a promise while waiting for room; throws when the stream can no longer be written. */
  write(chunk: Uint8Array): Promise<void> | undefined;
  /** Errors the destination, as the streams spec does when a sink's write fails. */
  error(error: unknown): void;
  /** As `PipeSource.orphaned`. */
  readonly orphaned: boolean;
  pipe: Pipe | undefined;
}

export interface PipeOptions {
  preventClose: boolean;
  preventAbort: boolean;
  preventCancel: boolean;
}

export class Pipe {
  readonly #source: PipeSource;
  readonly #sink: PipeSink;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #options: PipeOptions;
  readonly #resolve: () => void;
  readonly #reject: (error: unknown) => void;
  /** A write waits for room: the source is not read meanwhile. */
  #paused = false;
  #shuttingDown = false;

  constructor(
    source: PipeSource,
    sink: PipeSink,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    writer: WritableStreamDefaultWriter<Uint8Array>,
    options: PipeOptions,
    settle: { resolve: () => void; reject: (error: unknown) => void },
  ) {
    this.#source = source;
    this.#sink = sink;
    this.#reader = reader;
    this.#writer = writer;
    this.#options = options;
    this.#resolve = settle.resolve;
    this.#reject = settle.reject;
    source.pipe = this;
    sink.pipe = this;
  }

  /** Moves what the source has into the destination; called at the start and on every wake. */
  run(): void {
    while (!this.#paused && !this.#shuttingDown) {
      const chunk = this.#source.take();
      if (this.#shuttingDown) return; // Reading failed the source, which ended the pipe.
      if (chunk) {
        let waiting: Promise<void> | undefined;
        try {
          waiting = this.#sink.write(chunk);
        } catch (error) {
          this.destinationErrored(error, true);
          return;
        }
        if (waiting) {
          this.#paused = true;
          waiting.then(
            () => {
              this.#paused = false;
              this.run();
            },
            (error: unknown) => this.destinationErrored(error, true),
          );
          return;
        }
      }
      if (this.#source.ended) {
        this.#shutdown(this.#options.preventClose ? undefined : () => this.#writer.close());
        return;
      }
      if (!chunk) return; // A READABLE event brings us back.
    }
  }

  /**
   * The source errored (the peer reset it, or the session ended). A destination on the same
   * ended session is failed by that session with the same error: aborting it first would only
   * send a RESET_STREAM on a closed connection.
   */
  sourceErrored(error: unknown): void {
    const abort = !this.#options.preventAbort && !this.#sink.orphaned;
    this.#shutdown(abort ? () => this.#writer.abort(error) : undefined, { error });
  }

  /** The destination errored: a write failed (`fromWrite`), or the session ended (as above). */
  destinationErrored(error: unknown, fromWrite: boolean): void {
    if (this.#shuttingDown) return;
    if (fromWrite) this.#sink.error(error);
    const cancel = !this.#options.preventCancel && !this.#source.orphaned;
    this.#shutdown(cancel ? () => this.#reader.cancel(error) : undefined, { error });
  }

  /**
   * The spec's "shutdown with an action": run `action`, then release both streams and settle
   * (rejected with `failure`'s error, or the action's if it failed).
   */
  #shutdown(action: (() => Promise<void>) | undefined, failure?: { error: unknown }): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    const finalize = (end: { error: unknown } | undefined) => {
      this.#source.pipe = undefined;
      this.#sink.pipe = undefined;
      this.#writer.releaseLock();
      this.#reader.releaseLock();
      if (end) this.#reject(end.error);
      else this.#resolve();
    };
    if (!action) return finalize(failure);
    action().then(
      () => finalize(failure),
      (error: unknown) => finalize({ error }),
    );
  }
}
