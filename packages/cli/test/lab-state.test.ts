import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stateDir } from '../src/lab-state.ts';

test('cli - the state dir is where the user typed the command: `npm start` runs in the package folder, `npx firebreak burn` finds it from the root', () => {
  assert.equal(stateDir({ INIT_CWD: '/home/op/firebreak' }), '/home/op/firebreak/.firebreak');
  assert.equal(stateDir({ INIT_CWD: '/home/op/firebreak', FB_STATE_DIR: 'state' }), '/home/op/firebreak/state');
  assert.equal(stateDir({ INIT_CWD: '/home/op/firebreak', FB_STATE_DIR: '/var/lib/firebreak' }), '/var/lib/firebreak');
  assert.equal(stateDir({}), `${process.cwd()}/.firebreak`);
});
