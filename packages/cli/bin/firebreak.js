#!/usr/bin/env node
// Firebreak ships TypeScript sources; tsx compiles them as they load.
import process from 'node:process';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
