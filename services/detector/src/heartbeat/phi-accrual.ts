/**
 * Phi-accrual suspicion (Hayashibara et al., 2004; as in Akka and Cassandra):
 * phi(t) = -log10(1 - F(t)), F the normal CDF of a host's heartbeat
 * inter-arrival times, so a host that always beats on time is suspected
 * soon after it stops and one whose beats wander is given more slack.
 * F uses Akka's logistic approximation, 1 / (1 + e^-z) with
 * z = y (1.5976 + 0.070566 y²) and y = (t - mean) / std; it is invertible, so
 * the instant phi crosses the threshold is computed once per heartbeat and
 * nothing scans the hosts in between.
 */

const A = 1.5976;
const B = 0.070566;

export interface PhiAccrualOptions {
  /** Expected heartbeat period: the estimate a host starts from. */
  intervalMs: number;
  /** Suspicion at which a host counts as failed; 8 means a 1e-8 chance it is still alive. */
  threshold: number;
  /** Floor for the deviation, so a perfectly regular host is not failed by one late beat. */
  minStdMs: number;
  /** Weight of history: an exponentially weighted average with the centre of mass of this many intervals. */
  windowSize: number;
  /** Whatever the statistics say, fail after this much silence. */
  maxSilenceMs?: number;
}

/** ln(1 + e^x) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** phi after `elapsedMs` of silence; finite even far past the threshold, so it can go in evidence. */
export function phi(elapsedMs: number, meanMs: number, stdMs: number): number {
  const y = (elapsedMs - meanMs) / stdMs;
  // -log10(1 - 1/(1 + e^-z)) = log10(1 + e^z)
  return softplus(y * (A + B * y * y)) / Math.LN10;
}

/** The y = (t - mean) / std at which phi reaches `threshold`: the real root of B y³ + A y = ln(10^threshold - 1). */
export function thresholdDeviations(threshold: number): number {
  const z = Math.log(Math.expm1(threshold * Math.LN10));
  // Cardano for y³ + p y + q = 0 with p > 0: exactly one real root.
  const p = A / B;
  const q = -z / B;
  const root = Math.sqrt((q * q) / 4 + (p * p * p) / 27);
  return Math.cbrt(-q / 2 + root) + Math.cbrt(-q / 2 - root);
}

/** Per-host inter-arrival statistics in typed arrays, indexed by host number. */
export class PhiAccrualEstimator {
  private readonly mean: Float64Array;
  private readonly variance: Float64Array;
  /** Samples so far, counting the starting estimate as one, capped at windowSize. */
  private readonly samples: Uint16Array;
  private readonly alphaFloor: number;
  private readonly windowSize: number;
  private readonly deviations: number;
  private readonly maxSilenceMs: number;
  private readonly minStdMs: number;

  constructor(
    capacity: number,
    private readonly options: PhiAccrualOptions,
  ) {
    const { intervalMs, threshold, minStdMs, windowSize, maxSilenceMs } = options;
    if (!(intervalMs > 0)) throw new RangeError(`phi accrual: intervalMs must be positive, got ${intervalMs}`);
    if (!(threshold > 0)) throw new RangeError(`phi accrual: threshold must be positive, got ${threshold}`);
    if (!(minStdMs > 0)) throw new RangeError(`phi accrual: minStdMs must be positive, got ${minStdMs}`);
    if (!Number.isInteger(windowSize) || windowSize < 1 || windowSize > 0xffff) {
      throw new RangeError(`phi accrual: windowSize must be an integer in 1..65535, got ${windowSize}`);
    }
    if (maxSilenceMs !== undefined && !(maxSilenceMs > 0)) throw new RangeError(`phi accrual: maxSilenceMs must be positive, got ${maxSilenceMs}`);
    this.mean = new Float64Array(capacity);
    this.variance = new Float64Array(capacity);
    this.samples = new Uint16Array(capacity);
    this.alphaFloor = 2 / (windowSize + 1);
    this.windowSize = windowSize;
    this.deviations = thresholdDeviations(threshold);
    this.maxSilenceMs = maxSilenceMs ?? Number.POSITIVE_INFINITY;
    this.minStdMs = minStdMs;
    for (let host = 0; host < capacity; host++) this.reset(host);
  }

  /** Back to the starting estimate (Akka's): mean = interval, deviation = interval / 4. */
  reset(host: number): void {
    const { intervalMs } = this.options;
    this.mean[host] = intervalMs;
    this.variance[host] = (intervalMs / 4) ** 2;
    this.samples[host] = 1;
  }

  /** Adds one inter-arrival time (West's incremental weighted mean and variance). */
  observe(host: number, intervalMs: number): void {
    const n = Math.min((this.samples[host] as number) + 1, this.windowSize);
    this.samples[host] = n;
    // A plain average until the window is full, so the first beats outweigh the starting guess.
    const alpha = Math.max(1 / n, this.alphaFloor);
    const mean = this.mean[host] as number;
    const diff = intervalMs - mean;
    const step = alpha * diff;
    this.mean[host] = mean + step;
    this.variance[host] = (1 - alpha) * ((this.variance[host] as number) + diff * step);
  }

  /** Silence after a heartbeat at which phi reaches the threshold, capped at maxSilenceMs. */
  timeoutMs(host: number): number {
    const timeout = (this.mean[host] as number) + this.deviations * this.std(host);
    return timeout < this.maxSilenceMs ? timeout : this.maxSilenceMs;
  }

  phi(host: number, elapsedMs: number): number {
    return phi(elapsedMs, this.mean[host] as number, this.std(host));
  }

  private std(host: number): number {
    const std = Math.sqrt(this.variance[host] as number);
    return std > this.minStdMs ? std : this.minStdMs;
  }
}
