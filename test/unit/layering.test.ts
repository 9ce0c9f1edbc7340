/**
 * DESIGN.md's layering, checked: each folder of src/ may import only the folders and packages
 * listed here, so an arrow that points up (raft importing NATS, index importing LMDB, runtime
 * importing raft) fails CI. `src/runtime/errors.ts` (the error vocabulary) and
 * `src/index/utf8.ts` (the protocol's string order) are pure: every layer may use them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SRC = join(ROOT, 'src');

interface Rule {
  folders: string[];
  /** Package name prefixes; `node:` for Node's built-ins. */
  packages: string[];
}

// Pure files every layer may use: the error vocabulary, and the UTF-8 byte order that PROTOCOL.md
// makes the order of ids and range boundaries everywhere.
const SHARED_FILES = new Set(['runtime/errors.ts', 'index/utf8.ts']);

export const RULES: Record<string, Rule> = {
  runtime: { folders: ['runtime'], packages: ['node:', '@nats-io/', 'cbor-x', '@opentelemetry/api', 'prom-client', 'pino'] },
  raft: { folders: ['raft'], packages: [] },
  storage: { folders: ['storage', 'raft'], packages: ['node:', 'lmdb', 'cbor-x'] },
  // The index's HNSW is Shoal's own addon (native/, loaded by path in src/index/native-graph.ts); hnswlib-node is the benchmarks' anchor only.
  index: { folders: ['index'], packages: ['node:'] },
  // The Raft host: drives the pure core with the node's log store and a transport (NATS, or its in-memory twin).
  replication: { folders: ['replication', 'runtime', 'raft', 'storage'], packages: ['node:', '@nats-io/'] },
  shard: { folders: ['shard', 'index', 'storage'], packages: ['node:', 'lmdb', 'cbor-x'] },
  cluster: { folders: ['cluster', 'api', 'runtime'], packages: ['node:', '@nats-io/'] },
  api: { folders: ['api', 'runtime'], packages: ['node:'] },
  actors: { folders: ['actors', 'replication', 'runtime', 'raft', 'storage', 'index', 'shard', 'cluster', 'api'], packages: ['node:', '@nats-io/', '@opentelemetry/api'] },
  client: { folders: ['client', 'runtime', 'api'], packages: ['node:', '@nats-io/'] },
  cli: { folders: ['cli', 'client', 'actors', 'replication', 'cluster', 'api', 'runtime', 'raft', 'storage', 'index', 'shard'], packages: ['node:', '@nats-io/', '@opentelemetry/'] },
};

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

export function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT_RE)) out.push((m[1] ?? m[2] ?? m[3]) as string);
  return out;
}

function violations(): string[] {
  const found: string[] = [];
  for (const file of tsFiles(SRC)) {
    const rel = relative(SRC, file);
    const folder = rel.split('/')[0] as string;
    const rule = RULES[folder];
    if (!rule) {
      found.push(`${rel}: folder src/${folder} has no layering rule; add it to test/unit/layering.test.ts and DESIGN.md`);
      continue;
    }
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '.ts');
        const targetFolder = target.split('/')[0] as string;
        if (!rule.folders.includes(targetFolder) && !SHARED_FILES.has(target)) {
          found.push(`${rel} imports src/${target}: src/${folder} may not use src/${targetFolder}`);
        }
      } else if (!rule.packages.some((p) => spec === p || spec.startsWith(p.endsWith('/') || p.endsWith(':') ? p : `${p}/`))) {
        found.push(`${rel} imports package '${spec}': src/${folder} may not use it`);
      }
    }
  }
  return found;
}

describe('layering', () => {
  it('layering - the import parser sees every form of import', () => {
    const src = `import a from 'x';\nimport { b,\n c } from "../y.js";\nexport * from './z.js';\nconst d = await import('w');\nimport 'side';\nimport type { T } from 'types';`;
    assert.deepEqual(importsOf(src).sort(), ['../y.js', './z.js', 'side', 'types', 'w', 'x']);
  });

  it('layering - no module of src/ imports a layer or package DESIGN.md does not allow', () => {
    assert.deepEqual(violations(), []);
  });
});
