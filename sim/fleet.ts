/**
 * A deterministic simulated fleet: accounts with skewed sizes (a few big customers, a long
 * tail of small ones) and resources of every type spread over a few regions. Ids are
 * plain, recognizable strings (`acct-0001`, `vm-acct-0001-0003`) on purpose: privacy tests
 * search analytics tables and exports for them, so they must be easy to grep for.
 */
import { RESOURCE_TYPES, type Metric, type ResourceType } from '../schemas/sample.js';
import { Rng, hashSeed } from './random.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/**
 * Which metrics each resource type reports (a VM's storage is its boot disk). A VM with
 * GPUs also reports `gpu` (see withGpus): most VMs have none.
 */
export const METRICS_BY_TYPE: Readonly<Record<ResourceType, readonly Metric[]>> = {
  vm: ['cpu', 'memory', 'storage', 'bandwidth_in', 'bandwidth_out'],
  volume: ['storage'],
  database: ['cpu', 'memory', 'storage'],
  bucket: ['storage', 'bandwidth_out'],
  load_balancer: ['bandwidth_in', 'bandwidth_out'],
  network: ['bandwidth_in', 'bandwidth_out'],
};

/** Standard-time UTC offsets: the CPU shape is read in each region's local time. */
export const REGIONS = [
  { name: 'us-east-1', utcOffsetMin: -300, weight: 30 },
  { name: 'eu-west-1', utcOffsetMin: 0, weight: 22 },
  { name: 'us-west-2', utcOffsetMin: -480, weight: 15 },
  { name: 'eu-central-1', utcOffsetMin: 60, weight: 13 },
  { name: 'ap-south-1', utcOffsetMin: 330, weight: 10 },
  { name: 'ap-northeast-1', utcOffsetMin: 540, weight: 10 },
] as const;

const TYPE_WEIGHTS: ReadonlyArray<readonly [ResourceType, number]> = [
  ['vm', 35], ['volume', 25], ['database', 8], ['bucket', 12], ['load_balancer', 8], ['network', 12],
];
const ID_PREFIX: Readonly<Record<ResourceType, string>> = {
  vm: 'vm', volume: 'vol', database: 'db', bucket: 'bkt', load_balancer: 'lb', network: 'net',
};

interface InstanceType { name: string; vcpus: number; memoryGiB: number }
const VM_TYPES: ReadonlyArray<readonly [InstanceType, number]> = [
  [{ name: 't3.medium', vcpus: 2, memoryGiB: 4 }, 25],
  [{ name: 'm5.large', vcpus: 2, memoryGiB: 8 }, 30],
  [{ name: 'm5.xlarge', vcpus: 4, memoryGiB: 16 }, 20],
  [{ name: 'c5.2xlarge', vcpus: 8, memoryGiB: 16 }, 10],
  [{ name: 'r5.xlarge', vcpus: 4, memoryGiB: 32 }, 10],
  [{ name: 'm5.8xlarge', vcpus: 32, memoryGiB: 128 }, 5],
];
const DB_TYPES: ReadonlyArray<readonly [InstanceType, number]> = [
  [{ name: 'db.t3.medium', vcpus: 2, memoryGiB: 4 }, 30],
  [{ name: 'db.r5.large', vcpus: 2, memoryGiB: 16 }, 40],
  [{ name: 'db.r5.xlarge', vcpus: 4, memoryGiB: 32 }, 20],
  [{ name: 'db.r5.4xlarge', vcpus: 16, memoryGiB: 128 }, 10],
];
const PLANS: Readonly<Record<ResourceType, readonly string[]>> = {
  vm: ['on_demand', 'on_demand', 'reserved', 'spot'],
  volume: ['gp3', 'gp3', 'io2', 'st1'],
  database: ['single_az', 'multi_az'],
  bucket: ['standard', 'standard', 'infrequent_access', 'archive'],
  load_balancer: ['application', 'network'],
  network: [],
};

/**
 * Share of VMs with GPUs, and how many each has. Decided per resource from its own seeded
 * stream (hashSeed(seed, 'gpu', id)), never from the fleet's stream: fleets, ids and every
 * other metric's values stay exactly what they were for a seed before gpu existed, so demo
 * and bench numbers remain comparable.
 */
const GPU_VM_SHARE = 0.1;
const GPUS_PER_VM: ReadonlyArray<readonly [number, number]> = [[1, 50], [2, 25], [4, 15], [8, 10]];

export type TsFormat = 'iso' | 'epoch_ms' | 'iso_offset';

/** How a resource behaves over time; samples.ts turns this into values. */
export interface ResourceProfile {
  vcpus: number;
  memoryBytes: number;
  /** Mean CPU utilization (0–1) and how strongly it follows the diurnal shape (0 = flat). */
  cpuBaseUtil: number;
  cpuDiurnal: number;
  storageBaseBytes: number;
  storageGrowthPerHour: number;
  bwInBytesPerS: number;
  bwOutBytesPerS: number;
  /** GPUs attached (0 for most), and their mean utilization (0–1): training jobs run flat out. */
  gpus: number;
  gpuBaseUtil: number;
  /** Sigma of the per-window log-normal noise on bandwidth. */
  burstiness: number;
  /** How this resource's agent writes `ts`: producers differ, ingest must accept all. */
  tsFormat: TsFormat;
}

export interface Account {
  id: string;
  plan: 'free' | 'standard' | 'enterprise';
  homeRegion: string;
  resourceCount: number;
}

export interface Resource {
  id: string;
  accountId: string;
  type: ResourceType;
  region: string;
  utcOffsetMin: number;
  /** Low-cardinality descriptors only (instance_type, plan, zone); absent for networks. */
  attributes?: Record<string, string>;
  metrics: readonly Metric[];
  profile: ResourceProfile;
}

export interface Fleet {
  seed: number;
  accounts: Account[];
  resources: Resource[];
}

export interface FleetOptions {
  accounts?: number;
  resources?: number;
  seed?: number;
}

export function createFleet(opts: FleetOptions = {}): Fleet {
  const nAccounts = opts.accounts ?? 100;
  const nResources = opts.resources ?? 1000;
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(nAccounts) || nAccounts < 1) throw new Error('accounts must be a whole number ≥ 1');
  if (!Number.isInteger(nResources) || nResources < 1) throw new Error('resources must be a whole number ≥ 1');
  const rng = new Rng(hashSeed(seed, 'fleet'));

  const sizes = accountSizes(nAccounts, nResources);
  const pad = Math.max(4, String(nAccounts).length);
  const accounts: Account[] = sizes.map((size, i) => ({
    id: `acct-${String(i + 1).padStart(pad, '0')}`,
    // Big customers negotiate contracts; the long tail is mostly self-serve.
    plan: i < nAccounts * 0.05 ? 'enterprise' : rng.chance(0.3) ? 'free' : 'standard',
    homeRegion: rng.weighted(REGIONS.map((r) => [r.name, r.weight] as const)),
    resourceCount: size,
  }));

  const resources: Resource[] = [];
  for (const account of accounts) {
    for (let k = 0; k < account.resourceCount; k++) {
      // The fleet's first six resources (acct-0001 is the largest account, so usually all
      // its own) cover every type: any fleet of six or more exercises every type.
      const forced = RESOURCE_TYPES[resources.length];
      const type = forced ?? rng.weighted(TYPE_WEIGHTS);
      const seq = String(k + 1).padStart(4, '0');
      resources.push(withGpus(seed, makeResource(rng, account, type, `${ID_PREFIX[type]}-${account.id}-${seq}`)));
    }
  }
  return { seed, accounts, resources };
}

/**
 * Zipf-like sizes (weight 1/rank^1.1), every account at least one resource when there are
 * enough, split by largest remainder so the sizes add up to exactly `total`.
 */
function accountSizes(n: number, total: number): number[] {
  const floor = total >= n ? 1 : 0;
  const spare = total - floor * n;
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** 1.1);
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (w / sum) * spare);
  const sizes = exact.map((x) => floor + Math.floor(x));
  let left = total - sizes.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of byRemainder) {
    if (left-- <= 0) break;
    sizes[i] = (sizes[i] ?? 0) + 1;
  }
  return sizes;
}

function makeResource(rng: Rng, account: Account, type: ResourceType, id: string): Resource {
  const regionName = rng.chance(0.8) ? account.homeRegion : rng.pick(REGIONS).name;
  const region = REGIONS.find((r) => r.name === regionName) ?? REGIONS[0];
  const zone = `${region.name}${rng.pick(['a', 'b', 'c'])}`;
  const plans = PLANS[type];
  const plan = plans.length > 0 ? rng.pick(plans) : undefined;

  let instance: InstanceType | undefined;
  if (type === 'vm') instance = rng.weighted(VM_TYPES);
  if (type === 'database') instance = rng.weighted(DB_TYPES);

  const attributes: Record<string, string> = {};
  if (instance) attributes.instance_type = instance.name;
  if (plan) attributes.plan = plan;
  if (type === 'vm' || type === 'volume' || type === 'database') attributes.zone = zone;

  return {
    id,
    accountId: account.id,
    type,
    region: region.name,
    utcOffsetMin: region.utcOffsetMin,
    ...(Object.keys(attributes).length > 0 ? { attributes } : {}),
    metrics: METRICS_BY_TYPE[type],
    profile: makeProfile(rng, type, instance),
  };
}

/** Gives some VMs GPUs, from a stream of their own (see GPU_VM_SHARE). */
function withGpus(seed: number, r: Resource): Resource {
  if (r.type !== 'vm') return r;
  const g = new Rng(hashSeed(seed, 'gpu', r.id));
  if (!g.chance(GPU_VM_SHARE)) return r;
  const gpus = g.weighted(GPUS_PER_VM);
  return { ...r, metrics: [...r.metrics, 'gpu'], profile: { ...r.profile, gpus, gpuBaseUtil: g.uniform(0.3, 0.95) } };
}

function makeProfile(rng: Rng, type: ResourceType, instance: InstanceType | undefined): ResourceProfile {
  // Most machines idle, some are busy, a few run hot: the usual fleet utilization mix.
  const cpuBaseUtil = rng.weighted([
    [rng.uniform(0.02, 0.2), 60],
    [rng.uniform(0.2, 0.6), 30],
    [rng.uniform(0.6, 0.9), 10],
  ]);
  // Interactive services follow the day; batch work is flat. The fleet-wide trace swings
  // only a few percent, so single resources amplify it.
  const cpuDiurnal = rng.chance(0.75) ? rng.uniform(2, 7) : rng.uniform(0, 1);

  const storageBaseBytes = Math.round(
    type === 'vm' ? rng.pick([8, 20, 50, 100]) * GiB
    : type === 'volume' ? clamp(Math.round(rng.logNormal(200, 1)), 10, 16_384) * GiB
    : type === 'database' ? clamp(Math.round(rng.logNormal(100, 0.8)), 20, 4096) * GiB
    : type === 'bucket' ? clamp(rng.logNormal(500 * GiB, 2), GiB, 500 * 1024 * GiB)
    : 0,
  );
  // 0.05 %–1 % a day, at least 1 MiB an hour so growth shows within any simulated day.
  const storageGrowthPerHour = storageBaseBytes > 0
    ? Math.max(MiB, Math.round((storageBaseBytes * rng.uniform(0.0005, 0.01)) / 24))
    : 0;

  const rate = (medianBytesPerS: number, sigma: number) =>
    clamp(rng.logNormal(medianBytesPerS, sigma), 100, 1.25e9); // at most 10 Gbit/s
  const bw: Record<ResourceType, readonly [number, number, number]> = {
    vm: [50e3, 100e3, 1.5],
    volume: [0, 0, 0],
    database: [0, 0, 0],
    bucket: [0, 200e3, 2],
    load_balancer: [1e6, 1e6, 1.2],
    network: [2e6, 2e6, 1.5],
  };
  const [inMedian, outMedian, sigma] = bw[type];

  return {
    vcpus: instance?.vcpus ?? 0,
    memoryBytes: (instance?.memoryGiB ?? 0) * GiB,
    cpuBaseUtil,
    cpuDiurnal,
    storageBaseBytes,
    storageGrowthPerHour,
    bwInBytesPerS: inMedian > 0 ? rate(inMedian, sigma) : 0,
    bwOutBytesPerS: outMedian > 0 ? rate(outMedian, sigma) : 0,
    gpus: 0,
    gpuBaseUtil: 0,
    burstiness: rng.uniform(0.2, 0.8),
    tsFormat: rng.weighted([['iso', 50], ['epoch_ms', 35], ['iso_offset', 15]]),
  };
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
