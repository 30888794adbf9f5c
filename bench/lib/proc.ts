/**
 * What the kernel says about a process (Linux /proc): CPU time, per-thread CPU by thread
 * name, resident memory and its peak (VmHWM), and the machine's total CPU use, so another
 * session's load on a shared machine shows up in the results instead of hiding in them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

let clkTck: number | undefined;
/** Clock ticks per second for utime/stime (almost always 100). */
export function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a /proc/.../stat line, in ms. The comm field may contain spaces. */
function statCpuMs(statLine: string): { comm: string; cpuMs: number } {
  const open = statLine.indexOf('(');
  const close = statLine.lastIndexOf(')');
  const comm = statLine.slice(open + 1, close);
  const fields = statLine.slice(close + 2).split(' ');
  // After "(comm) ": state is field 3 → index 0; utime is field 14 → index 11, stime index 12.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { comm, cpuMs: (ticks * 1000) / ticksPerSecond() };
}

/** Whole-process CPU (all threads, including exited ones), ms. */
export function processCpuMs(pid: number): number {
  return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuMs;
}

export const MAIN_THREAD = 'JS main thread';

/**
 * CPU per thread name, ms. The main thread (thread id = pid) is reported as MAIN_THREAD.
 * On Node 20 libuv's pool threads keep the executable's name ("node"): chdb runs each
 * query's entry there (SQL text and inline insert data are parsed on that thread). V8's
 * helpers are "V8 DefaultWorke"; ClickHouse's own pools carry their names (ThreadPool,
 * QueryPipelineEx, MergeMutate for background merges, BgSchPool, …).
 */
export function threadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const { comm, cpuMs } = statCpuMs(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
      // The main thread shares its name with unnamed native threads: tell it apart by id.
      const name = tid === String(pid) ? MAIN_THREAD : comm;
      out[name] = (out[name] ?? 0) + cpuMs;
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

/** Difference of two thread-CPU snapshots; threads that ended in between are not counted. */
export function diffThreadCpu(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, ms] of Object.entries(after)) {
    const d = ms - (before[name] ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

/** Groups thread names into the parts of the product they belong to. */
export function groupThreads(cpu: Record<string, number>): Record<string, number> {
  const groups: Record<string, number> = {};
  for (const [name, ms] of Object.entries(cpu)) {
    const g =
      name === MAIN_THREAD ? 'JS main thread (HTTP, JSON, zod, BullMQ, client)'
      : name === 'node' || name.startsWith('libuv') ? 'libuv workers (chdb query entry: SQL + inline data parse)'
      : name.startsWith('V8') ? 'V8 helpers (GC, compiler)'
      : name.startsWith('MergeMutate') ? 'ClickHouse background merges'
      : 'ClickHouse query/insert pools';
    groups[g] = (groups[g] ?? 0) + ms;
  }
  return groups;
}

export interface MemStatus {
  /** Peak resident set size, kB. */
  vmHWMkB: number;
  vmRSSkB: number;
}

export function memStatus(pid: number): MemStatus {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { vmHWMkB: kb('VmHWM'), vmRSSkB: kb('VmRSS') };
}

/** Machine-wide busy and total jiffies from /proc/stat (all cores). */
export function systemCpu(): { busyMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const scale = 1000 / ticksPerSecond();
  return { busyMs: (total - idle) * scale, totalMs: total * scale };
}

/**
 * Watches processes while a phase runs: RSS over time (to see whether memory is bounded or
 * grows), peak RSS, and the machine's CPU use by everything else.
 */
export class ProcessWatch {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private readonly sysStart = systemCpu();
  private readonly cpuStart: Map<number, number> = new Map();
  /** Last CPU reading per process: one that exits keeps the CPU it used. */
  private readonly cpuLast: Map<number, number> = new Map();
  readonly rssSeries: Array<{ tMs: number; rssMB: Record<string, number> }> = [];
  readonly peakRssMB: Record<string, number> = {};

  constructor(private readonly pids: Record<string, number>, private readonly everyMs = 500) {
    for (const pid of Object.values(pids)) this.cpuStart.set(pid, safe(() => processCpuMs(pid), 0));
  }

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  private sample(): void {
    const rssMB: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const c = safe(() => processCpuMs(pid), undefined);
      if (c !== undefined) this.cpuLast.set(pid, c);
      const m = safe(() => memStatus(pid), undefined);
      if (!m) continue;
      rssMB[name] = m.vmRSSkB / 1024;
      this.peakRssMB[name] = Math.max(this.peakRssMB[name] ?? 0, m.vmHWMkB / 1024, m.vmRSSkB / 1024);
    }
    this.rssSeries.push({ tMs: Date.now() - this.started, rssMB });
  }

  /** Stops sampling; CPU of the watched processes and of everything else on the machine. */
  stop(): { wallMs: number; cpuMs: Record<string, number>; machineBusyCores: number; othersBusyCores: number } {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    const wallMs = Date.now() - this.started;
    const sys = systemCpu();
    const cpuMs: Record<string, number> = {};
    let ours = 0;
    for (const [name, pid] of Object.entries(this.pids)) {
      const d = (this.cpuLast.get(pid) ?? Number.NaN) - (this.cpuStart.get(pid) ?? 0);
      cpuMs[name] = d;
      if (Number.isFinite(d)) ours += d;
    }
    const busy = sys.busyMs - this.sysStart.busyMs;
    return { wallMs, cpuMs, machineBusyCores: busy / wallMs, othersBusyCores: Math.max(0, busy - ours) / wallMs };
  }
}

function safe<T, D>(fn: () => T, dflt: D): T | D {
  try {
    return fn();
  } catch {
    return dflt;
  }
}

/** Resets this process's VmHWM to its current RSS (Linux ≥ 4.0: "5" > clear_refs). */
export function resetPeakRss(pid: number | 'self' = 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits until the rest of the machine is quiet (other sessions' tests, builds): the CPU used
 * by everything except `ownPids`, over `sampleMs`, at most `thresholdCores`. Gives up after
 * `maxWaitMs` and says how loaded the machine still was; the round then runs anyway.
 */
export async function waitForQuiet(o: { ownPids: number[]; thresholdCores: number; sampleMs: number; maxWaitMs: number }): Promise<{ waitedMs: number; othersCores: number }> {
  const started = Date.now();
  for (;;) {
    const sys0 = systemCpu();
    const own0 = o.ownPids.map((p) => safe(() => processCpuMs(p), 0));
    await new Promise((r) => setTimeout(r, o.sampleMs));
    const sys1 = systemCpu();
    const own = o.ownPids.reduce((n, p, i) => n + safe(() => processCpuMs(p), own0[i] ?? 0) - (own0[i] ?? 0), 0);
    const othersCores = Math.max(0, sys1.busyMs - sys0.busyMs - own) / o.sampleMs;
    const waitedMs = Date.now() - started;
    if (othersCores <= o.thresholdCores || waitedMs >= o.maxWaitMs) return { waitedMs, othersCores };
  }
}
