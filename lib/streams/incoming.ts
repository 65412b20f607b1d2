/**
 * A queue of items exposed as a `ReadableStream` that is only built when first asked for. A
 * `ReadableStream` costs over 2 KB of heap, and an idle connection would otherwise carry three.
 */
export class LazyReadable<T> {
  #stream: ReadableStream<T> | undefined;
  #controller: ReadableStreamDefaultController<T> | undefined;
  #pending: T[] = [];
  #end: { error: unknown } | undefined;
  #cancelled = false;

  get stream(): ReadableStream<T> {
    this.#stream ??= new ReadableStream<T>({
      start: (c) => {
        this.#controller = c;
        for (const item of this.#pending) c.enqueue(item);
        this.#pending = [];
        if (this.#end) this.#settle(this.#end.error);
      },
      cancel: () => void (this.#cancelled = true),
    });
    return this.#stream;
  }

  /** Queues `item`; returns false when nobody will ever read it (the stream was cancelled or ended). */
  enqueue(item: T): boolean {
    if (this.#cancelled || this.#end) return false;
    if (this.#controller) this.#controller.enqueue(item);
    else this.#pending.push(item);
    return true;
  }

  /** Closes the stream (`error` undefined) or errors it; items not read yet are dropped on error. */
  end(error?: unknown): void {
    if (this.#end) return;
    this.#end = { error };
    if (this.#controller) this.#settle(error);
  }

  #settle(error: unknown): void {
    try {
      if (error === undefined) this.#controller?.close();
      else this.#controller?.error(error);
    } catch {
      // Already cancelled by the user.
    }
  }
}
