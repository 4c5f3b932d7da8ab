// Which failures are an outage (held and retried, no attempt spent) and which are the message's own.
import { isConnectionFailure } from './errors.js';

test('a publish the broker nacked is an outage, not the message’s failure', () => {
  // amqplib's confirm callback, as a participant's reply publish rejects with it during a node loss.
  expect(isConnectionFailure(new Error('message nacked'))).toBe(true);
  expect(isConnectionFailure(new Error('reply not sent', { cause: new Error('message nacked') }))).toBe(true);
});

test('PostgreSQL and RabbitMQ away or refusing are outages; a handler’s own error is not', () => {
  expect(isConnectionFailure(Object.assign(new Error('read-only'), { code: '25006' }))).toBe(true);
  expect(isConnectionFailure(Object.assign(new Error('getaddrinfo ENOTFOUND db'), { code: 'ENOTFOUND' }))).toBe(true);
  expect(isConnectionFailure(new Error('Channel closed'))).toBe(true);
  expect(isConnectionFailure(new Error('injected transient error on attempt 1'))).toBe(false);
  expect(isConnectionFailure(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
});
