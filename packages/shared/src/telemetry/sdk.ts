import { format } from 'node:util';
import { context, diag, DiagLogLevel, metrics, propagation, trace, type DiagLogger } from '@opentelemetry/api';
import { diagLogLevelFromString, getBooleanFromEnv, getStringFromEnv, getStringListFromEnv } from '@opentelemetry/core';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import type { IMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createLogger, defaultInstanceId, type Logger } from '../logger.ts';
import { ATTR_SERVICE_INSTANCE_ID } from './semconv.ts';

export interface TelemetryOptions {
  /** `service.name`, unless OTEL_SERVICE_NAME overrides it. */
  serviceName: string;
  /** `service.instance.id`; defaults to `<hostname>-<pid>` like the logger's `instance`. */
  instanceId?: string;
  /** Where telemetry's own failures are reported; defaults to a new logger for the service. */
  logger?: Logger;
  /** Replace the trace pipeline the OTEL_* variables would build (tests plug an in-memory exporter here). */
  spanProcessors?: SpanProcessor[];
  traceExporter?: SpanExporter;
  metricReader?: IMetricReader;
}

export interface Telemetry {
  /** False when nothing was configured and no SDK runs. */
  readonly enabled: boolean;
  /** Flushes what is buffered, then unregisters the SDK. Never rejects. */
  shutdown(): Promise<void>;
}

const disabled: Telemetry = { enabled: false, shutdown: () => Promise.resolve() };

let running: Telemetry | undefined;

/**
 * Starts the OpenTelemetry SDK as the standard OTEL_* variables describe, or
 * does nothing at all when none of them asks for an exporter: a service run
 * without a collector must not retry exports to a default endpoint forever.
 * Never throws: telemetry failing must not stop a recovery.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const tracePipeline = traceConfig(options);
  const metricPipeline = metricConfig(options);
  if (getBooleanFromEnv('OTEL_SDK_DISABLED') || (tracePipeline === undefined && metricPipeline === undefined)) return disabled;

  const instanceId = options.instanceId ?? defaultInstanceId();
  const logger = options.logger ?? createLogger(options.serviceName, { instance: instanceId });
  if (running !== undefined) {
    logger.warn('telemetry already started; keeping the running SDK');
    return running;
  }

  let sdk: NodeSDK;
  try {
    sdk = new NodeSDK({
      resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_INSTANCE_ID]: instanceId })),
      ...(getStringFromEnv('OTEL_SERVICE_NAME') === undefined && { serviceName: options.serviceName }),
      ...(tracePipeline ?? { spanProcessors: [] }),
      ...(metricPipeline ?? { metricReaders: [] }),
      // Logs go to stdout through pino and nothing bridges them into OpenTelemetry,
      // so an OTLP log pipeline would only idle unless someone asked for one.
      ...(getStringFromEnv('OTEL_LOGS_EXPORTER') === undefined && { logRecordProcessors: [] }),
    });
    // After the constructor, which installs a console logger when OTEL_LOG_LEVEL is set.
    diag.setLogger(diagnosticsTo(logger), {
      logLevel: diagLogLevelFromString(getStringFromEnv('OTEL_LOG_LEVEL')) ?? DiagLogLevel.WARN,
      suppressOverrideMessage: true,
    });
    sdk.start();
  } catch (err) {
    logger.error({ err }, 'telemetry failed to start; continuing without it');
    unregisterGlobals();
    return disabled;
  }

  let stopping: Promise<void> | undefined;
  const telemetry: Telemetry = {
    enabled: true,
    shutdown: () =>
      (stopping ??= sdk
        .shutdown()
        .catch((err: unknown) => logger.warn({ err }, 'telemetry shutdown failed; buffered spans may be lost'))
        .finally(() => {
          unregisterGlobals();
          running = undefined;
        })),
  };
  running = telemetry;
  return telemetry;
}

type TraceConfig = Pick<Partial<NodeSDKConfiguration>, 'spanProcessors' | 'traceExporter'>;

/** The caller's trace pipeline, `{}` to let the SDK build one from the environment, or undefined for none. */
function traceConfig(options: TelemetryOptions): TraceConfig | undefined {
  if (options.spanProcessors !== undefined) return { spanProcessors: options.spanProcessors };
  if (options.traceExporter !== undefined) return { traceExporter: options.traceExporter };
  return exporterRequested('TRACES') ? {} : undefined;
}

function metricConfig(options: TelemetryOptions): Pick<Partial<NodeSDKConfiguration>, 'metricReaders'> | undefined {
  if (options.metricReader !== undefined) return { metricReaders: [options.metricReader] };
  return exporterRequested('METRICS') ? {} : undefined;
}

/**
 * A signal is exported when its OTEL_<SIGNAL>_EXPORTER names an exporter or an
 * OTLP endpoint is set. The SDK alone would default to OTLP on localhost.
 */
function exporterRequested(signal: 'TRACES' | 'METRICS'): boolean {
  const exporters = getStringListFromEnv(`OTEL_${signal}_EXPORTER`);
  if (exporters !== undefined) return exporters.some((name) => name !== 'none');
  return (
    getStringFromEnv('OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined ||
    getStringFromEnv(`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`) !== undefined
  );
}

/** Export failures surface through `diag`; send them to the service's JSON log instead of the console. */
function diagnosticsTo(logger: Logger): DiagLogger {
  const otelLogger = logger.child({ component: 'opentelemetry' });
  const at =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: string, ...args: unknown[]) =>
      otelLogger[level](format(message, ...args));
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), verbose: at('trace') };
}

/** Lets a later startTelemetry in the same process (tests) register again. */
function unregisterGlobals(): void {
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
  diag.disable();
}
