export * from './sdk.ts';
export * from './semconv.ts';
