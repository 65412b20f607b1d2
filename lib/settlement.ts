/**
 * An outcome exposed as a promise that is only made when first asked for. A session's `ready`,
 * `closed` and `draining` each cost a promise, two resolving functions and their context, and a
 * handled-rejection reaction, and a server holding many idle sessions rarely asks for them.
 * Rejections count as handled, as WebTransport's `ready` and `closed` do: not awaiting them is
 * fine.
 */
export class Settlement<T> {
  #promise: Promise<T> | undefined;
  #resolve: ((value: T) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  #outcome: { value: T } | { error: unknown } | undefined;

  get promise(): Promise<T> {
    if (this.#promise) return this.#promise;
    const outcome = this.#outcome;
    if (!outcome) {
      this.#promise = new Promise<T>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
    } else if ('value' in outcome) {
      this.#promise = Promise.resolve(outcome.value);
    } else {
      this.#promise = Promise.reject(outcome.error);
    }
    this.#promise.catch(noop);
    return this.#promise;
  }

  resolve(value: T): void {
    if (this.#outcome) return;
    this.#outcome = { value };
    this.#resolve?.(value);
    this.#release();
  }

  reject(error: unknown): void {
    if (this.#outcome) return;
    this.#outcome = { error };
    this.#reject?.(error);
    this.#release();
  }

  #release(): void {
    this.#resolve = undefined;
    this.#reject = undefined;
  }
}

function noop(): void {}
