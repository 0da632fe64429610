/** The time source. Injected wherever "now" matters, so tests can pin it. */
export class Clock {
  now(): Date {
    return new Date();
  }
}
