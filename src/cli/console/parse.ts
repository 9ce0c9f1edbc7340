/**
 * How the console reads a line: words split on spaces, `'…'` and `"…"` quote (as a shell does), a
 * word that starts with `[` or `{` runs to its closing bracket (so `ask n1/router {"type": "x"}`
 * and `search docs [0.1, 0.2] 5` need no quotes), and `;` separates commands. Pure.
 */
import { UsageError } from '../command.js';

/** One command of a line: its words, and the text it came from (for history and messages). */
export interface ParsedCommand {
  words: string[];
  text: string;
}

/** The commands of `line`, split on `;` outside quotes and brackets; empty ones dropped. Throws {@link UsageError} for an unclosed quote or bracket. */
export function parseLine(line: string): ParsedCommand[] {
  const commands: ParsedCommand[] = [];
  let words: string[] = [];
  let word: string | undefined;
  let start = 0;
  let i = 0;
  const endWord = (): void => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const endCommand = (end: number): void => {
    endWord();
    if (words.length > 0) commands.push({ words, text: line.slice(start, end).trim() });
    words = [];
    start = end + 1;
  };
  while (i < line.length) {
    const c = line[i] as string;
    if (c === ';') {
      endCommand(i);
      i++;
    } else if (/\s/.test(c)) {
      endWord();
      i++;
    } else if (c === '"' || c === "'") {
      const close = line.indexOf(c, i + 1);
      if (close < 0) throw new UsageError(`unclosed ${c} at column ${i + 1}`);
      word = (word ?? '') + line.slice(i + 1, close);
      i = close + 1;
    } else if ((c === '[' || c === '{') && word === undefined) {
      const end = bracketEnd(line, i);
      word = line.slice(i, end);
      i = end;
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  endCommand(line.length);
  return commands;
}

/** The index just past the bracket that closes the one at `open` (JSON strings inside skipped). */
function bracketEnd(line: string, open: number): number {
  const stack: string[] = [];
  let inString = false;
  for (let i = open; i < line.length; i++) {
    const c = line[i] as string;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '[' || c === '{') {
      stack.push(c === '[' ? ']' : '}');
    } else if (c === ']' || c === '}') {
      if (stack.pop() !== c) throw new UsageError(`unbalanced ${c} at column ${i + 1}`);
      if (stack.length === 0) return i + 1;
    }
  }
  throw new UsageError(`unclosed ${line[open] ?? '['} at column ${open + 1}`);
}

/** Parses `text` as JSON for argument `what`, or throws a {@link UsageError} naming it. */
export function jsonArg(text: string | undefined, what: string): unknown {
  if (text === undefined) throw new UsageError(`${what} is missing`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}
