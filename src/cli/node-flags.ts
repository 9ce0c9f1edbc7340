/**
 * The Node.js flags a `shoal node` process runs with (docs/deploy.md, "Node.js flags"). `shoal
 * dev`, the test clusters and the systemd unit pass them, and the `shoal` command's own shebang
 * carries them; a node started without them says so in its log and runs, only slower.
 *
 * `--initial-old-space-size=128`: with V8's default, a node's main thread, whose heap holds only
 * ~20 MB of live objects, kept its old-generation limit so close above them that the ArrayBuffers
 * a bulk load churns through (a 784 KB batch is decoded, logged, applied and forwarded several
 * times) started a full mark-compact about once per 250-point batch: 53-73 per node for 20,000
 * Fashion-MNIST points. A 64 MiB starting limit cut that to 4-9 per 10,000 (13-29 without), but a
 * 60,000-point load still ran 68-88 per node; 128 MiB, 17-24, and V8's GC threads took a third
 * less CPU than with 64 (0.26 -> 0.17 ms per point over the three nodes; the rate itself moved
 * within the noise: bench/RESULTS.md, "Ingest: where the CPU goes"). The cost: the main thread's
 * heap may grow to ~128 MiB before it is collected.
 * V8 reads the flag when it sets its heap up, so it cannot be set from inside the process
 * (v8.setFlagsFromString has no effect).
 */
export const NODE_PROCESS_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/** The flags of {@link NODE_PROCESS_FLAGS} that `execArgv` (this process's Node.js flags) lacks, by name. */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  const name = (flag: string): string => flag.split('=')[0]?.replace(/_/g, '-') ?? flag;
  const given = new Set(execArgv.map(name));
  return NODE_PROCESS_FLAGS.filter((f) => !given.has(name(f)));
}
