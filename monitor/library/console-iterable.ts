// console: 'iterable' — the guest's output as an async iterable, with the
// same back-pressure as a callback or stream console: a chunk's bytes stay
// "in flight" (console-flow.ts) until the reader takes the chunk, so a reader
// that falls behind holds the guest at PUTS instead of growing a queue.
import { StringDecoder } from 'node:string_decoder';
import { OptionError } from '../errors.js';
import type { ConsoleTaker } from './console-flow.js';
import type { ConsoleOutput } from './types.js';

export interface IterableConsole {
  readonly taker: ConsoleTaker;
  readonly output: ConsoleOutput;
}

/** `release(n)` gives n bytes of room back to the guest. */
export function iterableConsole(release: (n: number) => void): IterableConsole {
  const queue: Uint8Array[] = [];
  let ended = false;
  /** The reader left (break, return()): drop everything from now on. */
  let detached = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };

  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          release(next.length);
          yield next;
        } else if (ended) {
          return;
        } else {
          await new Promise<void>((r) => (wake = r));
        }
      }
    } finally {
      // Also on break: what is queued and what follows is dropped, its room returned.
      detached = true;
      for (const c of queue.splice(0)) release(c.length);
    }
  }

  async function* lines(): AsyncGenerator<string> {
    const decoder = new StringDecoder('utf8');
    let partial = '';
    for await (const chunk of chunks()) {
      const parts = (partial + decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) yield line;
    }
    const rest = partial + decoder.end();
    if (rest !== '') yield rest;
  }

  return {
    taker: {
      take(bytes) {
        if (detached) {
          release(bytes.length);
          return;
        }
        queue.push(bytes);
        notify();
      },
      close() {
        ended = true;
        notify();
      },
    },
    output: { [Symbol.asyncIterator]: chunks, lines },
  };
}

/** vm.console of a VM whose console goes elsewhere: iterating it is a mistake worth a clear message. */
export const NOT_ITERABLE: ConsoleOutput = {
  [Symbol.asyncIterator]() {
    throw new OptionError("console: this VM's output goes elsewhere; start it with console: 'iterable' to iterate it");
  },
  lines() {
    throw new OptionError("console: this VM's output goes elsewhere; start it with console: 'iterable' to iterate it");
  },
};
