/**
 * The parts bin the generator draws from: hardware models, images, kinds of
 * servers and of preemptible work, and how tiers map to recovery targets.
 * Weights are relative; they shape a plausible fleet, not a statistic.
 */
export type LabArch = 'x86_64' | 'aarch64';

export const archs: readonly LabArch[] = ['x86_64', 'aarch64'];

export interface HostModel {
  cpus: number;
  memoryGiB: number;
}

export const hostModels: Record<LabArch, readonly (readonly [HostModel, number])[]> = {
  x86_64: [
    [{ cpus: 32, memoryGiB: 256 }, 3],
    [{ cpus: 48, memoryGiB: 384 }, 4],
    [{ cpus: 64, memoryGiB: 512 }, 2],
    [{ cpus: 96, memoryGiB: 1024 }, 1],
  ],
  aarch64: [
    [{ cpus: 80, memoryGiB: 256 }, 2],
    [{ cpus: 128, memoryGiB: 512 }, 1],
  ],
};

/** Operating system images, one build per architecture. */
export const osImages = ['rhel9', 'ubuntu24', 'debian12'] as const;
/** Booted on a host that turns into a hypervisor; one build per architecture. */
export const hypervisorImage = 'kvm';

export const imageId = (name: string, arch: LabArch): string => `${name}-${arch}`;

export const serverFamilies = ['web', 'api', 'db', 'cache', 'mq', 'search', 'auth', 'billing'] as const;
export type ServerFamily = (typeof serverFamilies)[number];

/** Databases are the usual reason a server must not run under a hypervisor. */
export const bareMetalOnlyChance = (family: ServerFamily): number => (family === 'db' ? 0.5 : 0.06);

export const serverCpus: readonly (readonly [number, number])[] = [
  [4, 3],
  [8, 4],
  [16, 4],
  [24, 2],
  [32, 2],
  [48, 1],
  [64, 1],
];
export const memoryPerCpuGiB = [4, 8] as const;

export const bootLunGiB = [100, 200, 500] as const;
export const dataLunGiB = [500, 1000, 2000, 4000] as const;

/** Tier 0 is the most critical and the rarest. */
export const tierWeights: readonly (readonly [number, number])[] = [
  [0, 5],
  [1, 20],
  [2, 35],
  [3, 40],
];
export const rtoSecondsByTier: readonly number[] = [300, 900, 1800, 3600];

export const workloadKinds = ['batch', 'ci-runner', 'analytics', 'render', 'dev-sandbox'] as const;
/** Preemptible work runs at 5-9: higher is less important, preempted first. */
export const workloadPriorities = [5, 6, 7, 8, 9] as const;
