/** The detector's OpenTelemetry metrics; no-ops when no meter provider is set. */
import { metrics, type Histogram } from '@opentelemetry/api';

export interface TrackerCounts {
  tracked: number;
  armed: number;
  heartbeats: number;
  unknown: number;
  invalid: number;
}

export class DetectorMetrics {
  private readonly meter = metrics.getMeter('firebreak-detector');
  private readonly latency: Histogram = this.meter.createHistogram('firebreak.detector.detection.latency', {
    unit: 'ms',
    description: 'From a failed host’s last heartbeat to its verdict',
  });

  /** Gauges and counters read from the tracker when the exporter collects. */
  observe(counts: () => TrackerCounts): void {
    const tracked = this.meter.createObservableGauge('firebreak.detector.hosts.tracked', { description: 'Hosts heartbeating and watched' });
    const beats = this.meter.createObservableCounter('firebreak.detector.heartbeats', { description: 'Heartbeats received' });
    const bad = this.meter.createObservableCounter('firebreak.detector.heartbeats.rejected', { description: 'Invalid or unknown heartbeats' });
    this.meter.addBatchObservableCallback(
      (result) => {
        const c = counts();
        result.observe(tracked, c.armed);
        result.observe(beats, c.heartbeats);
        result.observe(bad, c.invalid, { reason: 'invalid' });
        result.observe(bad, c.unknown, { reason: 'unknown-host' });
      },
      [tracked, beats, bad],
    );
  }

  /** Verdicts JetStream has not acknowledged yet: above zero for long means NATS is unreachable and failures go unreported. */
  observeVerdictsWaiting(waiting: () => number): void {
    const gauge = this.meter.createObservableGauge('firebreak.detector.verdicts.waiting', { description: 'Verdicts not yet acknowledged by JetStream' });
    gauge.addCallback((result) => result.observe(waiting()));
  }

  detected(latencyMs: number): void {
    this.latency.record(latencyMs);
  }
}
