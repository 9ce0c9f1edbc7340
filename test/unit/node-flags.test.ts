import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NODE_PROCESS_FLAGS, missingNodeFlags } from '../../src/cli/node-flags.js';

describe('node-flags', () => {
  it('node-flags - a node started with the flags misses none; without them, or with another value, by name', () => {
    assert.deepEqual(missingNodeFlags([...NODE_PROCESS_FLAGS]), []);
    assert.deepEqual(missingNodeFlags([]), [...NODE_PROCESS_FLAGS]);
    assert.deepEqual(missingNodeFlags(['--initial-old-space-size=256', '--enable-source-maps']), []);
    assert.deepEqual(missingNodeFlags(['--initial_old_space_size=128']), []);
    assert.deepEqual(missingNodeFlags(['--max-old-space-size=4096']), [...NODE_PROCESS_FLAGS]);
  });

  it('node-flags - the shoal command and the systemd unit start Node.js with every flag', () => {
    // the two places outside TypeScript: the entry's shebang and deploy/systemd
    const shebang = readFileSync(new URL('../../../src/cli/main.ts', import.meta.url), 'utf8').split('\n')[0] ?? '';
    const unit = readFileSync(new URL('../../../deploy/systemd/shoal-node.service', import.meta.url), 'utf8');
    const execStart = unit.split('\n').find((l) => l.startsWith('ExecStart=')) ?? '';
    for (const flag of NODE_PROCESS_FLAGS) {
      assert.ok(shebang.startsWith('#!/usr/bin/env -S node ') && shebang.includes(flag), `main.ts's first line ${JSON.stringify(shebang)} lacks ${flag}`);
      assert.ok(execStart.includes(` ${flag} `), `the unit's ${execStart} lacks ${flag}`);
    }
  });
});
