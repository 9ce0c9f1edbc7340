/**
 * CPU time of whole processes (all their threads), sampled from /proc/<pid>/stat so that the CPU
 * each one spent in any window of a run can be cut out afterwards.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** CPU time (user + system) in a /proc `stat` file (a process's or a thread's), ms; NaN once it is gone. Clock ticks are 1/100 s on Linux. */
function statCpuMs(path: string): number {
  try {
    const fields = readFileSync(path, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) process `pid` has used, ms; NaN once it is gone. */
export function cpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`);
}

/** CPU time each thread of process `pid` has used, ms, by thread id (a thread that ended while read is left out). */
export function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const ms = statCpuMs(`/proc/${pid}/task/${tid}/stat`);
    if (!Number.isNaN(ms)) out.set(Number(tid), ms);
  }
  return out;
}

/** CPU time all of this machine's cores have spent busy (anything but idle and iowait), ms, from /proc/stat. */
export function machineBusyMs(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) * 10;
}

/** The name under which samples carry {@link machineBusyMs}. */
export const MACHINE = 'machine';

interface Sample {
  at: number;
  ms: Map<string, number>;
}

export class CpuSampler {
  private readonly samples: Sample[] = [];
  private readonly pids = new Map<string, number>();

  /** Starts sampling process `pid` under `name` (a name can be watched again with another pid). */
  watch(name: string, pid: number): void {
    this.pids.set(name, pid);
  }

  unwatch(name: string): void {
    this.pids.delete(name);
  }

  sample(): void {
    const ms = new Map<string, number>([[MACHINE, machineBusyMs()]]);
    for (const [name, pid] of this.pids) {
      const v = cpuMs(pid);
      if (Number.isFinite(v)) ms.set(name, v);
    }
    this.samples.push({ at: performance.now(), ms });
  }

  /**
   * CPU each process spent in [from, to), in percent of one core, from the last sample at or
   * before `from` to the first at or after `to` (so the window is widened to whole samples).
   * Processes not sampled at both ends are left out. {@link MACHINE}: every process on the machine.
   */
  between(from: number, to: number): Map<string, number> {
    let a: Sample | undefined;
    let b: Sample | undefined;
    for (const s of this.samples) {
      if (s.at <= from) a = s;
      if (s.at >= to && !b) b = s;
    }
    a ??= this.samples[0];
    b ??= this.samples[this.samples.length - 1];
    const out = new Map<string, number>();
    if (!a || !b || b.at <= a.at) return out;
    for (const [name, end] of b.ms) {
      const start = a.ms.get(name);
      if (start !== undefined) out.set(name, ((end - start) / (b.at - a.at)) * 100);
    }
    return out;
  }
}
