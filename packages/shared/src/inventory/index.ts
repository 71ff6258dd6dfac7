export * from './inventory-error.ts';
export * from './loader.ts';
export * from './cross-check.ts';
export * from './inventory-index.ts';
export * from './service-inventory.ts';
