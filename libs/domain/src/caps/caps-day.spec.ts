import { addDays, dayStart, isTimeZone, nextDayStart, tenantDay } from './caps-day';

describe('tenantDay', () => {
  it.each([
    ['UTC midnight', '2026-11-25T00:00:00Z', 'UTC', '2026-11-25'],
    ['UTC last instant', '2026-11-25T23:59:59.999Z', 'UTC', '2026-11-25'],
    ['Los Angeles is still the day before', '2026-11-25T07:59:59Z', 'America/Los_Angeles', '2026-11-24'],
    ['Los Angeles midnight (PST, UTC-8)', '2026-11-25T08:00:00Z', 'America/Los_Angeles', '2026-11-25'],
    ['Auckland is already the next day', '2026-11-25T11:00:00Z', 'Pacific/Auckland', '2026-11-26'],
    ['Kolkata half-hour offset, before', '2026-11-24T18:29:59Z', 'Asia/Kolkata', '2026-11-24'],
    ['Kolkata half-hour offset, at midnight', '2026-11-24T18:30:00Z', 'Asia/Kolkata', '2026-11-25'],
    ['Kiritimati (UTC+14)', '2026-11-24T10:00:00Z', 'Pacific/Kiritimati', '2026-11-25'],
    ['year boundary in New York', '2027-01-01T04:59:59Z', 'America/New_York', '2026-12-31'],
  ])('%s', (_name, at, zone, day) => {
    expect(tenantDay(new Date(at), zone)).toBe(day);
  });
});

describe('dayStart and nextDayStart', () => {
  it.each([
    ['UTC', '2026-11-25', 'UTC', '2026-11-25T00:00:00.000Z'],
    ['Los Angeles in winter (UTC-8)', '2026-11-25', 'America/Los_Angeles', '2026-11-25T08:00:00.000Z'],
    ['Los Angeles in summer (UTC-7)', '2026-07-01', 'America/Los_Angeles', '2026-07-01T07:00:00.000Z'],
    ['the DST day itself starts at midnight', '2026-03-08', 'America/Los_Angeles', '2026-03-08T08:00:00.000Z'],
    ['the day after DST starts one hour earlier', '2026-03-09', 'America/Los_Angeles', '2026-03-09T07:00:00.000Z'],
    ['Kolkata', '2026-11-25', 'Asia/Kolkata', '2026-11-24T18:30:00.000Z'],
    ['Auckland in its summer (UTC+13)', '2026-11-26', 'Pacific/Auckland', '2026-11-25T11:00:00.000Z'],
    // Santiago moves clocks forward at local midnight in September: 00:00 does not exist, the day starts at 01:00.
    ['a day whose midnight does not exist', '2026-09-06', 'America/Santiago', '2026-09-06T04:00:00.000Z'],
  ])('%s', (_name, day, zone, start) => {
    expect(dayStart(day, zone).toISOString()).toBe(start);
    expect(tenantDay(dayStart(day, zone), zone)).toBe(day);
    expect(tenantDay(new Date(dayStart(day, zone).getTime() - 1), zone)).toBe(addDays(day, -1));
  });

  it('the next day starts where the day ends', () => {
    expect(nextDayStart('2026-11-24', 'America/Los_Angeles').toISOString()).toBe('2026-11-25T08:00:00.000Z');
    expect(nextDayStart('2026-12-31', 'UTC').toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });
});

describe('isTimeZone', () => {
  it.each([
    ['UTC', true],
    ['Europe/Paris', true],
    ['Mars/Olympus_Mons', false],
    ['', false],
  ])('%p', (zone, known) => {
    expect(isTimeZone(zone)).toBe(known);
  });
});
