export * from './san-inventory.ts';
