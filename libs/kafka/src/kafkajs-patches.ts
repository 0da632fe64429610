/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any -- patches an untyped kafkajs internal */

/** kafkajs's RequestQueue re-check interval while requests are pending (its CHECK_PENDING_REQUESTS_INTERVAL). */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

/**
 * kafkajs 2.2.4's RequestQueue schedules its throttle check with a negative delay when nothing is
 * pending and no throttle is in force (throttledUntil is -1), which Node 24 reports as a
 * TimeoutNegativeWarning on every connection. Same method, delay clamped at 0: what Node did anyway.
 */
export function patchKafkajsRequestQueue(): void {
  const RequestQueue = require('kafkajs/src/network/requestQueue') as { prototype: any };
  if (RequestQueue.prototype.__agentmeterPatched) return;
  RequestQueue.prototype.__agentmeterPatched = true;
  RequestQueue.prototype.scheduleCheckPendingRequests = function (this: any): void {
    let scheduleAt = this.throttledUntil - Date.now();
    if (!this.throttleCheckTimeoutId) {
      if (this.pending.length > 0) scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL;
      this.throttleCheckTimeoutId = setTimeout(
        () => {
          this.throttleCheckTimeoutId = null;
          this.checkPendingRequests();
        },
        Math.max(scheduleAt, 0),
      );
    }
  };
}

patchKafkajsRequestQueue();
