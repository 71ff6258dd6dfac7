export * from './common.schema.ts';
export * from './inventory.schema.ts';
export * from './events.schema.ts';
export * from './commands.schema.ts';
export * from './incident.schema.ts';
export * from './dead-letter.schema.ts';
export * from './readiness.schema.ts';
export * from './validation.ts';
