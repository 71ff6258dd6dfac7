export * from './subjects.ts';
export * from './errors.ts';
