// The error a function throws, checked to be of a class (for tests that look
// at an error's fields, not only its message).
import { expect } from 'vitest';

export function thrownBy<T extends Error>(fn: () => unknown, C: new (...args: never[]) => T): T {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(C);
  return err as T;
}
