/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any -- patches an untyped kafkajs internal */

/** kafkajs's RequestQueue re-check interval while requests are pending (its CHECK_PENDING_REQUESTS_INTERVAL). */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

/**
 * kafkajs 2.2.4's RequestQueue re-schedules its throttle check even when nothing is pending and no throttle
 * is in force (throttledUntil is -1): a timer of "-Date.now()" ms, which Node 24 reports as a
 * TimeoutNegativeWarning and runs after 1 ms, and which re-arms itself for as long as the connection lives.
 * Same method, without that idle timer: a request that has to wait is pushed to `pending`, and push() schedules
 * the check then.
 */
export function patchKafkajsRequestQueue(): void {
  const RequestQueue = require('kafkajs/src/network/requestQueue') as { prototype: any };
  if (RequestQueue.prototype.__agentmeterPatched) return;
  RequestQueue.prototype.__agentmeterPatched = true;
  RequestQueue.prototype.scheduleCheckPendingRequests = function (this: any): void {
    if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
    const throttledFor = this.throttledUntil - Date.now();
    this.throttleCheckTimeoutId = setTimeout(
      () => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      },
      throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL,
    );
  };
}

patchKafkajsRequestQueue();
