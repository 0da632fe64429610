import { Inject, Injectable } from '@nestjs/common';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { checkTarget, TargetRefusedError, type HostResolver, type ResolvedAddress } from '@agentmeter/domain';
import { lookup } from 'node:dns/promises';
import { WorkerConfig } from '../config';
import { DeliveryFailure, networkFailure } from './delivery-failure';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

const MAX_BODY = 64 * 1024;

const resolveHost: HostResolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

/**
 * POSTs to webhook and Slack URLs, and nowhere an attacker could point them: the URL passes the SSRF check
 * (libs/domain alert-ssrf) right before the request, and the connection goes to an address that check
 * accepted (the request's DNS lookup is pinned to it), so a second DNS answer cannot bring in a private
 * address. Redirects are never followed. A refused target is a permanent failure.
 */
@Injectable()
export class SafeHttp {
  private resolve: HostResolver = resolveHost;

  constructor(@Inject(WorkerConfig) private readonly config: WorkerConfig) {}

  async post(
    rawUrl: string,
    channel: 'slack' | 'webhook',
    headers: Record<string, string>,
    body: string,
  ): Promise<HttpAnswer> {
    let target;
    try {
      target = await checkTarget(
        rawUrl,
        {
          channel,
          slackAllowedHosts: this.config.ALERT_SLACK_ALLOWED_HOSTS,
          allowLoopbackHttp: this.config.ALERT_ALLOW_LOOPBACK_HTTP,
        },
        this.resolve,
      );
    } catch (error) {
      if (error instanceof TargetRefusedError) {
        // DNS that does not answer now may answer later; every other refusal is about the target itself.
        throw new DeliveryFailure(error.message, /does not resolve/.test(error.message) ? 'retry' : 'permanent');
      }
      throw error;
    }
    const pinned = target.addresses[0]!;
    const request = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<HttpAnswer>((resolve, reject) => {
      const req = request(
        target.url,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': Buffer.byteLength(body).toString() },
          timeout: this.config.ALERT_DELIVERY_TIMEOUT_MS,
          lookup: pinnedLookup(pinned),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_BODY) chunks.push(chunk);
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', (error) => reject(networkFailure(error)));
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (error) => reject(networkFailure(error)));
      req.end(body);
    });
  }
}

/** A DNS lookup that answers the checked address whatever the name (both callback shapes of net.connect). */
function pinnedLookup(address: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address: address.address, family: address.family }]);
    else callback(null, address.address, address.family);
  };
}
