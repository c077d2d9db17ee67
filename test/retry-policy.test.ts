import { expect } from 'chai';
import { loadConfig } from '../config.js';
import { attemptsWithin, retryDelayMs, retryPolicyOf, type RetryPolicy } from '../workers/queues/retry-policy.js';
import { retrySchedule } from './helpers/retry-schedule.js';

describe('retry policy: capped exponential backoff over a horizon', () => {
  it('doubles from the first wait, stops growing at the cap, and retries until the waits reach the horizon', () => {
    const policy: RetryPolicy = { backoffMs: 100, maxBackoffMs: 1_000, retryHorizonMs: 5_000 };
    // 100+200+400+800 = 1500, then 1000 each: the fourth capped wait brings the sum to 5500 ≥ 5000.
    expect(retrySchedule(policy)).to.deep.equal([100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000]);
    expect(attemptsWithin(policy)).to.equal(9);
    expect(retryDelayMs(policy, 1)).to.equal(100);
    expect(retryDelayMs(policy, 1_000)).to.equal(1_000);
  });

  it('by default outlasts an outage of hours: 6 h of waits, none longer than 10 min', () => {
    const policy = retryPolicyOf(loadConfig({}));
    expect(policy).to.deep.equal({ backoffMs: 2_000, maxBackoffMs: 600_000, retryHorizonMs: 6 * 3600_000 });
    const schedule = retrySchedule(policy);
    const total = schedule.reduce((a, b) => a + b, 0);
    expect(total).to.be.at.least(policy.retryHorizonMs);
    // The last wait is the one that crossed the horizon: without it the sum falls short.
    expect(total - schedule[schedule.length - 1]!).to.be.below(policy.retryHorizonMs);
    expect(Math.max(...schedule)).to.equal(600_000);
    expect(schedule.slice(0, 4)).to.deep.equal([2_000, 4_000, 8_000, 16_000]);
    expect(attemptsWithin(policy)).to.equal(schedule.length + 1);
  });

  it('a zero horizon means one attempt; a cap below the first wait is refused by config', () => {
    expect(attemptsWithin({ backoffMs: 100, maxBackoffMs: 100, retryHorizonMs: 0 })).to.equal(1);
    expect(() => loadConfig({ JOB_BACKOFF_MS: '5000', JOB_MAX_BACKOFF_MS: '1000' })).to.throw(/JOB_MAX_BACKOFF_MS/);
  });

  it('counts a long horizon with a small cap without walking it', () => {
    const policy: RetryPolicy = { backoffMs: 1, maxBackoffMs: 1, retryHorizonMs: 30 * 24 * 3600_000 };
    expect(attemptsWithin(policy)).to.equal(30 * 24 * 3600_000 + 1);
  });
});
