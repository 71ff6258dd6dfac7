export * from './subjects.ts';
export * from './topics.ts';
export * from './errors.ts';
export * from './embedded-servers.ts';
export * from './schemas/index.ts';
export * from './config.ts';
export * from './logger.ts';
export * from './telemetry/index.ts';
