/**
 * Group commit (docs/cost-cap.md "The fast path"): requests that arrive while a write is in flight wait and are
 * written together by the next one, in one statement and one transaction (one round trip, one WAL record
 * flush for the whole batch). A lone request is written at once: no timer, no added latency. Each caller gets
 * its own row's outcome when its batch has committed, or the batch's error.
 */
export class GroupCommit<I, O> {
  private readonly queue: Array<{ item: I; resolve: (value: O) => void; reject: (error: unknown) => void }> = [];
  private inFlight = 0;

  /**
   * @param write writes a batch, returning each item's outcome in order (one statement, one transaction)
   * @param maxBatch most items per write
   * @param maxInFlight writes at once (the next batch forms while they run)
   */
  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 256,
    private readonly maxInFlight = 2,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      this.write(batch.map((entry) => entry.item))
        .then(
          (outcomes) => batch.forEach((entry, i) => entry.resolve(outcomes[i]!)),
          (error: unknown) => batch.forEach((entry) => entry.reject(error)),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
