export * from './bus.ts';
export * from './connection.ts';
export * from './streams.ts';
export * from './trace-headers.ts';
export * from './token-floor.ts';
export * from './jetstream-errors.ts';
export * from './stored-progress.ts';
