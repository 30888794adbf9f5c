/**
 * node_exporter → one resource per target (the host or VM the exporter runs on).
 *
 * Decisions, each a billing choice (bump `version` to change one):
 * - cpu: seconds in modes user, nice, system, irq and softirq, summed over all CPUs. Not
 *   idle or iowait (the CPU did no work), not steal (the hypervisor ran someone else).
 *   guest time is already inside user on Linux, so it is not added again.
 * - memory: MemTotal − MemAvailable, the memory in use, as the brief for this collector asks.
 *   To bill the allocation instead, declare a mapping with MemTotal alone.
 * - storage: size of real filesystems, each device once (bind mounts repeat a device).
 *   Memory-backed (tmpfs, ramfs), container layers (overlay), read-only images (squashfs,
 *   iso9660), pseudo and network filesystems are excluded: they are not provisioned disk, or
 *   are billed elsewhere (network volumes).
 * - bandwidth: bytes on physical-looking interfaces. Loopback and virtual devices (bridges,
 *   veth, tap, tunnels, overlay networks) are excluded: their traffic also crosses a physical
 *   interface and would be counted twice. Bonds and VLAN sub-interfaces are not excluded;
 *   a host using them needs its own mapping.
 * account_id and resource_id come from the target's labels in the targets file.
 */
import { defineMapping } from './schema.js';

const NOT_DISK_FSTYPES =
  'tmpfs|ramfs|devtmpfs|overlay|squashfs|iso9660|autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|' +
  'fusectl|fuse\\..*|hugetlbfs|mqueue|nsfs|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|sysfs|tracefs|' +
  'nfs4?|cifs|smb3|ceph|glusterfs|9p|virtiofs';
const NOT_DISK_MOUNTS = '/(dev|proc|sys|run)(/.*)?|/var/lib/(docker|containers|kubelet)/.+|/snap/.+';
const VIRTUAL_NICS =
  'lo|veth.*|docker.*|br-.*|virbr.*|vnet.*|tap.*|tun.*|wg.*|cali.*|flannel.*|cni.*|kube-.*|ifb.*|vxlan.*|' +
  'genev_sys.*|cilium.*|lxc.*';

export const nodeExporterMapping = defineMapping({
  name: 'node_exporter',
  version: 1,
  description: 'Per host: non-idle CPU seconds, memory in use, filesystem size, physical network bytes.',
  resource: { type: 'vm' },
  account_id: [{ from: 'target_label', name: 'account_id' }],
  resource_id: [{ from: 'target_label', name: 'resource_id' }, { from: 'target_id' }],
  metrics: [
    {
      metric: 'cpu',
      kind: 'counter',
      terms: [{ series: 'node_cpu_seconds_total', where: [{ label: 'mode', op: '=~', value: 'user|nice|system|irq|softirq' }] }],
    },
    {
      metric: 'memory',
      kind: 'gauge',
      terms: [{ series: 'node_memory_MemTotal_bytes' }, { series: 'node_memory_MemAvailable_bytes', sign: -1 }],
    },
    {
      metric: 'storage',
      kind: 'gauge',
      terms: [
        {
          series: 'node_filesystem_size_bytes',
          where: [
            { label: 'fstype', op: '!~', value: NOT_DISK_FSTYPES },
            { label: 'mountpoint', op: '!~', value: NOT_DISK_MOUNTS },
          ],
          distinct_by: ['device'],
        },
      ],
    },
    {
      metric: 'bandwidth_in',
      kind: 'counter',
      terms: [{ series: 'node_network_receive_bytes_total', where: [{ label: 'device', op: '!~', value: VIRTUAL_NICS }] }],
    },
    {
      metric: 'bandwidth_out',
      kind: 'counter',
      terms: [{ series: 'node_network_transmit_bytes_total', where: [{ label: 'device', op: '!~', value: VIRTUAL_NICS }] }],
    },
  ],
});
