/**
 * The deployment files as shipped (issue 19, item 8): the systemd unit passes
 * `systemd-analyze verify`, and the NATS server configuration (with the permissions it includes)
 * is valid to nats-server itself, and refused when a password variable it reads is missing.
 * (test/integration/nats-permissions.test.ts runs a server on permissions.conf for real.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { findNatsServer } from '../../src/runtime/nats-server.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const UNIT = `${ROOT}deploy/systemd/shoal-node.service`;
const NATS_CONF = `${ROOT}deploy/nats/nats-a.conf`;
const PASSWORDS = { SHOAL_NODE_PASSWORD: 'n', SHOAL_APP_PASSWORD: 'a', SHOAL_READER_PASSWORD: 'r', SHOAL_ADMIN_PASSWORD: 'o' };

describe('deploy files', () => {
  it('deploy - the systemd unit passes systemd-analyze verify without a warning', () => {
    assert.ok(existsSync(UNIT), UNIT);
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    assert.ok(!r.error, `systemd-analyze cannot run (Debian's systemd package has it; scripts/setup.sh installs it): ${String(r.error)}`);
    assert.equal(r.status, 0, `systemd-analyze verify: ${r.stderr}`);
    assert.equal(r.stderr.trim(), '', 'no warnings');
  });

  it("deploy - the NATS configuration and its permissions are valid to nats-server; a password variable missing is refused, naming it", () => {
    const bin = findNatsServer();
    const ok = spawnSync(bin, ['-t', '-c', NATS_CONF], { encoding: 'utf8', env: { ...process.env, ...PASSWORDS } });
    assert.equal(ok.status, 0, `nats-server -t: ${ok.stderr}${ok.stdout}`);
    assert.match(`${ok.stdout}${ok.stderr}`, /is valid/);
    const { SHOAL_READER_PASSWORD: _, ...three } = PASSWORDS;
    const env: Record<string, string | undefined> = { ...process.env, ...three };
    delete env['SHOAL_READER_PASSWORD'];
    const missing = spawnSync(bin, ['-t', '-c', NATS_CONF], { encoding: 'utf8', env });
    assert.notEqual(missing.status, 0);
    assert.match(`${missing.stdout}${missing.stderr}`, /SHOAL_READER_PASSWORD/);
  });
});
