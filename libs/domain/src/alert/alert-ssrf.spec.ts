import {
  checkTarget,
  classifyAddress,
  TargetRefusedError,
  type AddressClass,
  type HostResolver,
  type TargetPolicy,
} from './alert-ssrf';

describe('classifyAddress', () => {
  it.each<[string, AddressClass]>([
    ['8.8.8.8', 'public'],
    ['52.1.2.3', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['10.0.0.5', 'private'],
    ['100.64.0.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.15.255.255', 'public'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.0', 'public'],
    ['192.168.1.1', 'private'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['2606:4700::1111', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['::127.0.0.1', 'reserved'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::808:808', 'public'],
    ['2002:c0a8:0101::1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1%eth0', 'link-local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['2001:0::1', 'reserved'],
    ['not-an-ip', 'invalid'],
    ['1.2.3', 'invalid'],
    ['01.2.3.4', 'invalid'],
    ['1::2::3', 'invalid'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });
});

describe('checkTarget', () => {
  const dns: Record<string, string[]> = {
    'hooks.slack.com': ['52.1.2.3'],
    'example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'internal.example.com': ['10.0.0.7'],
    'metadata.example.com': ['169.254.169.254'],
    'mixed.example.com': ['93.184.215.14', '192.168.0.10'],
    'v6local.example.com': ['fd00::1'],
    localhost: ['127.0.0.1', '::1'],
    'empty.example.com': [],
  };
  const resolve: HostResolver = async (host) => {
    const answer = dns[host];
    if (!answer) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const webhook: TargetPolicy = {
    channel: 'webhook',
    slackAllowedHosts: ['hooks.slack.com'],
    allowLoopbackHttp: false,
  };
  const slack: TargetPolicy = { ...webhook, channel: 'slack' };
  const testing: TargetPolicy = { ...webhook, allowLoopbackHttp: true };

  it.each<[string, TargetPolicy, string, string | null]>([
    ['a public https webhook', webhook, 'https://example.com/hook', null],
    ['the Slack hooks host', slack, 'https://hooks.slack.com/services/T0/B0/abc', null],
    ['plain http', webhook, 'http://example.com/hook', 'only https is allowed'],
    ['another scheme', webhook, 'ftp://example.com/x', 'only https is allowed'],
    ['not a URL', webhook, 'example.com/hook', 'not a valid URL'],
    ['credentials in the URL', webhook, 'https://user:pw@example.com/hook', 'credentials'],
    ['Slack to another host', slack, 'https://example.com/services/x', 'not an allowed Slack host'],
    ['a private literal', webhook, 'https://10.0.0.1/hook', 'resolves to 10.0.0.1, a private address'],
    ['a loopback literal', webhook, 'https://127.0.0.1:8443/hook', 'a loopback address'],
    ['an IPv6 loopback literal', webhook, 'https://[::1]/hook', 'a loopback address'],
    ['a mapped IPv6 literal', webhook, 'https://[::ffff:169.254.169.254]/', 'link-local'],
    ['a decimal-encoded loopback', webhook, 'https://2130706433/hook', 'a loopback address'],
    ['a hex-encoded private address', webhook, 'https://0x0a.0.0.1/hook', 'a private address'],
    [
      'a name resolving to a private address',
      webhook,
      'https://internal.example.com/hook',
      '10.0.0.7, a private address',
    ],
    ['the cloud metadata address by name', webhook, 'https://metadata.example.com/', 'a link-local address'],
    ['one private answer among public ones', webhook, 'https://mixed.example.com/', '192.168.0.10, a private address'],
    ['an IPv6 unique-local answer', webhook, 'https://v6local.example.com/', 'fd00::1, a private address'],
    ['localhost', webhook, 'https://localhost/hook', 'a loopback address'],
    ['a name that does not resolve', webhook, 'https://nowhere.example.com/', 'does not resolve (ENOTFOUND)'],
    ['a name without addresses', webhook, 'https://empty.example.com/', 'has no address'],
    ['test config: http to loopback', testing, 'http://127.0.0.1:9000/hook', null],
    ['test config: localhost', testing, 'http://localhost:9000/hook', null],
    ['test config: still no private space', testing, 'http://10.0.0.1/hook', 'a private address'],
    [
      'test config: no plain http to public hosts',
      testing,
      'http://example.com/hook',
      'only https is allowed to example.com',
    ],
    [
      'test config: Slack still needs an allowed host',
      { ...testing, channel: 'slack' },
      'http://127.0.0.1:9000/x',
      'not an allowed Slack host',
    ],
    [
      'test config: an allow-listed Slack host',
      { ...testing, channel: 'slack', slackAllowedHosts: ['127.0.0.1'] },
      'http://127.0.0.1:9000/x',
      null,
    ],
  ])('%s', async (_name, policy, url, refusal) => {
    const result = checkTarget(url, policy, resolve);
    if (refusal === null) {
      await expect(result).resolves.toMatchObject({ url: expect.any(URL) });
    } else {
      await expect(result).rejects.toThrow(TargetRefusedError);
      await expect(result).rejects.toThrow(refusal);
    }
  });

  it('never puts the URL path (the credential) in the refusal', async () => {
    await expect(checkTarget('https://10.0.0.1/services/SECRET-PART', webhook, resolve)).rejects.toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('SECRET-PART') }),
    );
  });

  it('returns the addresses to connect to', async () => {
    const target = await checkTarget('https://example.com/hook', webhook, resolve);
    expect(target.addresses.map((a) => a.address)).toEqual(dns['example.com']);
  });
});
