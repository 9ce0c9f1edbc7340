import { readFileSync } from 'node:fs';

/** The version in package.json (the compiled CLI lives at dist/src/cli/). */
export function shoalVersion(): string {
  const url = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}
