import { Inject, Injectable } from '@nestjs/common';
import { lookup } from 'node:dns/promises';
import { checkTarget, type CheckedTarget, type HostResolver } from '@agentmeter/domain';
import { AlertConfig } from '../config';

/** Every address of a host name, as the system resolver answers (the addresses a connection could use). */
const resolveHost: HostResolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

/** The SSRF check of webhook and Slack URLs (libs/domain alert-ssrf) with this deployment's policy and DNS. */
@Injectable()
export class TargetChecker {
  constructor(@Inject(AlertConfig) private readonly config: AlertConfig) {}

  check(url: string, channel: 'slack' | 'webhook'): Promise<CheckedTarget> {
    return checkTarget(
      url,
      {
        channel,
        slackAllowedHosts: this.config.ALERT_SLACK_ALLOWED_HOSTS,
        allowLoopbackHttp: this.config.ALERT_ALLOW_LOOPBACK_HTTP,
      },
      resolveHost,
    );
  }
}
