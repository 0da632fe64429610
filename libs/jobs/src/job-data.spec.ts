import { AlertJobNames, AlertRulesQueue, CostCapJobNames, CostCapTimersQueue } from '@agentmeter/contracts';
import { InvalidJobError, parseJobData } from './job-data';

describe('parseJobData (the check at enqueue and at process time)', () => {
  it('returns the data of a declared job, its trace context kept and unknown fields dropped', () => {
    const trace = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    expect(
      parseJobData(AlertRulesQueue, AlertJobNames.FlushGroup, {
        name: AlertJobNames.FlushGroup,
        groupId: 'g-1',
        trace,
        addedLater: true,
      }),
    ).toEqual({ name: AlertJobNames.FlushGroup, groupId: 'g-1', trace });
  });

  it.each([
    ['a missing field', { name: CostCapJobNames.WallTime, tenantId: 't', threshold: 80 }, 'runId'],
    ['a wrong type', { name: CostCapJobNames.WallTime, tenantId: 't', runId: 7, threshold: 80 }, 'runId'],
    [
      'a value out of its set',
      { name: CostCapJobNames.WallTime, tenantId: 't', runId: 'r', threshold: 90 },
      'threshold',
    ],
    [
      'data naming another job',
      { name: CostCapJobNames.OverrideExpiry, tenantId: 't', runId: 'r', threshold: 80 },
      'name',
    ],
    ['no object at all', 'wall-time', '(data)'],
  ])('rejects %s with a reason naming the queue, the job and the field', (_case, data, field) => {
    const attempt = () => parseJobData(CostCapTimersQueue, CostCapJobNames.WallTime, data);
    expect(attempt).toThrow(InvalidJobError);
    expect(attempt).toThrow(`invalid data for job "cost-cap-wall-time" on queue cost-cap-timers: ${field}`);
  });

  it('never puts the offending value in the reason (payload fields may be ids a log should not repeat)', () => {
    const data = { name: CostCapJobNames.OverrideExpiry, overrideId: { secret: 'sk-live-123' } };
    expect(() => parseJobData(CostCapTimersQueue, CostCapJobNames.OverrideExpiry, data)).toThrow(
      /^(?!.*sk-live-123).*overrideId/,
    );
  });

  it('rejects a job name the queue does not declare', () => {
    expect(() => parseJobData(CostCapTimersQueue, 'cost-cap-nap', { name: 'cost-cap-nap' })).toThrow(
      new InvalidJobError('unknown job "cost-cap-nap" on queue cost-cap-timers'),
    );
    // Names of Object.prototype are not job names either.
    expect(() => parseJobData(CostCapTimersQueue, 'toString', {})).toThrow('unknown job "toString"');
  });
});
