/** The `shoal` command's exit codes: one per class, the same in the code and in docs/cli.md. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/cli/command.js';
import { EXIT_BY_CODE, EXIT_CODES, EXIT_IN_USE, EXIT_USAGE, errorLine, exitCodeOf, wireErrorOf } from '../../src/cli/exit-codes.js';
import { InUseError } from '../../src/cli/lock.js';
import { ERROR_CODES, MailboxFullError, NotFoundError, ShoalError, TimeoutError, errorFromCode } from '../../src/runtime/errors.js';

const DOC = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');

/** The rows of the table under `## Exit codes`: [code, name]. */
function documentedCodes(): [number, string][] {
  const section = DOC.split(/^## /m).find((s) => s.startsWith('Exit codes'));
  assert.ok(section, 'docs/cli.md has a section "Exit codes"');
  return section
    .split('\n')
    .filter((l) => /^\| \d+ \|/.test(l))
    .map((l) => {
      const [code, name] = l.split('|').slice(1, 3).map((c) => c.trim());
      return [Number(code), String(name)];
    });
}

describe('cli exit codes', () => {
  it('cli exit codes - docs/cli.md lists exactly the codes of exit-codes.ts, in order, with the same names', () => {
    assert.deepEqual(documentedCodes(), EXIT_CODES.map((c) => [c.code, c.name]));
  });

  it('cli exit codes - every class has its own code', () => {
    const codes = EXIT_CODES.map((c) => c.code);
    assert.equal(new Set(codes).size, codes.length, `duplicates in ${codes.join(', ')}`);
  });

  it('cli exit codes - each public protocol error code has its own exit code; internal codes exit as the public code they surface as', () => {
    for (const code of ERROR_CODES) {
      const err = errorFromCode(code, 'x');
      const expected = (EXIT_BY_CODE as Record<string, number | undefined>)[code];
      if (expected !== undefined) assert.equal(exitCodeOf(err), expected, code);
    }
    assert.equal(exitCodeOf(new NotFoundError('x')), 11);
    assert.equal(exitCodeOf(new TimeoutError('x')), 15);
    assert.equal(exitCodeOf(new MailboxFullError('x')), EXIT_BY_CODE.UNAVAILABLE);
    assert.equal(exitCodeOf(new UsageError('x')), EXIT_USAGE);
    assert.equal(exitCodeOf(Object.assign(new TypeError('Unknown option'), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' })), EXIT_USAGE);
    assert.equal(exitCodeOf(new InUseError('busy', 1)), EXIT_IN_USE);
    assert.equal(exitCodeOf(new Error('boom')), 1);
  });

  it('cli exit codes - --json errors are the protocol\'s {"error": {code, message}}; text errors show the code', () => {
    assert.deepEqual(wireErrorOf(new NotFoundError("collection 'x' does not exist")), { error: { code: 'NOT_FOUND', message: "collection 'x' does not exist" } });
    assert.deepEqual(wireErrorOf(new UsageError('--k must be 1 to 1000, got abc')), { error: { code: 'INVALID_ARGUMENT', message: '--k must be 1 to 1000, got abc' } });
    assert.deepEqual(wireErrorOf(new MailboxFullError('full')), { error: { code: 'UNAVAILABLE', message: 'full' } });
    assert.deepEqual(wireErrorOf(new Error('boom')), { error: { code: 'INTERNAL', message: 'boom' } });
    assert.equal(errorLine(new NotFoundError("collection 'x' does not exist")), "error: NOT_FOUND: collection 'x' does not exist");
    assert.equal(errorLine(new UsageError('get needs a collection name')), 'error: get needs a collection name');
    assert.ok(new NotFoundError('x') instanceof ShoalError);
  });
});
