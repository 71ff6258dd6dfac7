#!/usr/bin/env node
// Firebreak ships TypeScript sources; tsx compiles them as they load.
import process from 'node:process';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
// Exit once the command is done: a connection attempt it gave up on must not keep the process alive.
process.exit(await main(process.argv.slice(2)));
