export * from './subjects.ts';
export * from './topics.ts';
export * from './errors.ts';
export * from './embedded-servers.ts';
export * from './schemas/index.ts';
