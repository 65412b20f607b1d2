/**
 * A queue of items exposed as a `ReadableStream` that is only built when first asked for. A
 * `ReadableStream` costs over 2 KB of heap, and an idle connection would otherwise carry three.
 *
 * Items wait here, not in the stream's own queue, until a read asks for one (a high-water mark
 * of 0): so that when the user cancels the stream, every item nobody took is still known and is
 * refused (`refuse`), as the ones that arrive later are.
 */
export class LazyReadable<T> {
  readonly #refuse: (item: T) => void;
  #stream: ReadableStream<T> | undefined;
  #controller: ReadableStreamDefaultController<T> | undefined;
  #pending: T[] = [];
  /** A read waits and nothing was pending: the next item goes straight to it. */
  #wanted = false;
  #end: { error: unknown } | undefined;
  #cancelled = false;

  constructor(refuse: (item: T) => void) {
    this.#refuse = refuse;
  }

  get stream(): ReadableStream<T> {
    this.#stream ??= new ReadableStream<T>(
      {
        start: (c) => {
          this.#controller = c;
          this.#settleIfDone();
        },
        pull: (c) => {
          const item = this.#pending.shift();
          if (item === undefined) {
            this.#wanted = true;
            return;
          }
          c.enqueue(item);
          this.#settleIfDone();
        },
        cancel: () => {
          this.#cancelled = true;
          for (const item of this.#pending.splice(0)) this.#refuse(item);
        },
      },
      { highWaterMark: 0 },
    );
    return this.#stream;
  }

  /**
   * Queues `item`; when nobody will ever read it (the stream was cancelled or ended), refuses it
   * and returns false.
   */
  enqueue(item: T): boolean {
    if (this.#cancelled || this.#end) {
      this.#refuse(item);
      return false;
    }
    if (this.#wanted) {
      this.#wanted = false;
      this.#controller?.enqueue(item);
    } else {
      this.#pending.push(item);
    }
    return true;
  }

  /**
   * Closes the stream (`error` undefined) once the items queued are read, or errors it at once;
   * items not read yet are dropped on error.
   */
  end(error?: unknown): void {
    if (this.#end) return;
    this.#end = { error };
    if (error !== undefined) this.#pending = [];
    this.#settleIfDone();
  }

  #settleIfDone(): void {
    if (!this.#controller || !this.#end || this.#pending.length > 0) return;
    try {
      if (this.#end.error === undefined) this.#controller.close();
      else this.#controller.error(this.#end.error);
    } catch {
      // Already cancelled by the user, or closed before.
    }
  }
}
