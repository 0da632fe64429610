import { Redactor } from '@agentmeter/domain';

/** The PSEUDONYM_KEY of every test: services started by tests get it, so pseudonyms are predictable. */
export const TEST_PSEUDONYM_KEY = 'agentmeter-test-pseudonym-key-0123456789';

/** The redactor a service configured with TEST_PSEUDONYM_KEY uses. */
export function testRedactor(): Redactor {
  return Redactor.withKey(TEST_PSEUDONYM_KEY);
}
