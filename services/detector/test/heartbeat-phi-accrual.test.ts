import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PhiAccrualEstimator, phi, thresholdDeviations } from '../src/heartbeat/phi-accrual.ts';

test('detector heartbeat-phi-accrual - phi grows with silence and matches Akka at the mean', () => {
  assert.ok(Math.abs(phi(1_000, 1_000, 100) - Math.log10(2)) < 1e-12, 'half the mass left at the mean');
  let last = 0;
  for (let t = 0; t <= 3_000; t += 50) {
    const value = phi(t, 1_000, 100);
    assert.ok(value >= last && Number.isFinite(value), `phi(${t}) = ${value}`);
    last = value;
  }
  assert.ok(Number.isFinite(phi(1e9, 1_000, 1)), 'finite far out, so it can go in evidence');
});

test('detector heartbeat-phi-accrual - the computed crossing is where phi equals the threshold', () => {
  for (const threshold of [0.5, 1, 3, 8, 12, 16]) {
    const y = thresholdDeviations(threshold);
    assert.ok(Math.abs(phi(1_000 + y * 200, 1_000, 200) - threshold) < 1e-9, `threshold ${threshold}: y ${y}`);
  }
});

test('detector heartbeat-phi-accrual - the estimate starts at the period and learns the deviation', () => {
  const options = { intervalMs: 1_000, threshold: 8, minStdMs: 50, windowSize: 100 };
  const estimator = new PhiAccrualEstimator(2, options);
  const start = estimator.timeoutMs(0);
  assert.ok(Math.abs(start - (1_000 + thresholdDeviations(8) * 250)) < 1e-9, 'Akka: deviation = period / 4 to begin with');
  for (let i = 0; i < 200; i++) {
    estimator.observe(0, 1_000);
    estimator.observe(1, i % 2 === 0 ? 600 : 1_400);
  }
  const steady = estimator.timeoutMs(0);
  const irregular = estimator.timeoutMs(1);
  assert.ok(Math.abs(steady - (1_000 + thresholdDeviations(8) * 50)) < 1, `steady ${steady}: at the floor`);
  assert.ok(Math.abs(irregular - (1_000 + thresholdDeviations(8) * 400)) < 30, `irregular ${irregular}`);
  const capped = new PhiAccrualEstimator(1, { ...options, maxSilenceMs: 1_200 });
  assert.equal(capped.timeoutMs(0), 1_200);
});
