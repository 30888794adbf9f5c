/**
 * otel_host: OpenTelemetry host metrics → usage, one resource per OTLP Resource (one host
 * or VM), written in the collectors' mapping language (ingest/collectors/mappings/schema.ts)
 * and applied by the same code. Series names are the Prometheus translation of the OTLP
 * names (names.ts): `system.cpu.time` (unit s, monotonic) is `system_cpu_time_seconds_total`.
 *
 * It reads both spellings in use: the semantic conventions' attributes (`cpu.mode`,
 * `system.memory.state`, `network.io.direction`, `system.device`, `system.filesystem.*`)
 * and the OpenTelemetry Collector hostmetrics receiver's older ones (`state`, `direction`,
 * `device`, `type`). The second term of each pair requires the first's attribute to be
 * absent, so a point carrying both is counted once.
 *
 * Decisions, each a billing choice (bump `version` to change one), as node_exporter's:
 * - cpu: seconds in modes user, nice, system, interrupt (irq) and softirq; not idle,
 *   iowait or steal.
 * - memory: `system.memory.usage` in state `used` (a gauge or an up-down counter).
 * - storage: `system.filesystem.usage` summed over its states (used + free + reserved =
 *   the filesystem's size), each (device, state) once; memory-backed, container-layer,
 *   pseudo and network filesystems excluded.
 * - bandwidth: `system.network.io` bytes per direction on physical-looking devices
 *   (loopback and virtual devices excluded: their traffic crosses a physical one too).
 *
 * Identity from the Resource's attributes (OTLP resource attributes are the target's
 * labels, with `.` read as `_`): account `cloud.account.id`; resource `host.id`, else
 * `cloud.resource_id`; region `cloud.region` (required); attributes `host.type` →
 * instance_type, `cloud.availability_zone` → zone.
 */
import { defineMapping, type LabelMatcher, type SeriesTerm } from '../collectors/mappings/index.js';

const CPU_MODES = 'user|nice|system|interrupt|irq|softirq';
const NOT_DISK_FSTYPES =
  'tmpfs|ramfs|devtmpfs|overlay|squashfs|iso9660|autofs|bpf|cgroup2?|configfs|debugfs|devpts|fusectl|fuse\\..*|hugetlbfs|' +
  'mqueue|nsfs|proc|procfs|pstore|securityfs|sysfs|tracefs|nfs4?|cifs|smb3|ceph|glusterfs|9p|virtiofs';
const VIRTUAL_NICS =
  'lo|veth.*|docker.*|br-.*|virbr.*|vnet.*|tap.*|tun.*|wg.*|cali.*|flannel.*|cni.*|kube-.*|ifb.*|vxlan.*|genev_sys.*|cilium.*|lxc.*';

/** A term in the semantic conventions' spelling and one in the hostmetrics receiver's, never both. */
function bothSpellings(series: string, semconv: LabelMatcher[], hostmetrics: LabelMatcher[], distinct?: [string[], string[]]): SeriesTerm[] {
  const semconvLabel = semconv[0]!.label;
  return [
    { series, where: semconv, ...(distinct ? { distinct_by: distinct[0] } : {}) },
    { series, where: [{ label: semconvLabel, op: '=', value: '' }, ...hostmetrics], ...(distinct ? { distinct_by: distinct[1] } : {}) },
  ];
}

const network = (direction: 'receive' | 'transmit'): SeriesTerm[] =>
  bothSpellings(
    'system_network_io_bytes_total',
    [{ label: 'network_io_direction', op: '=', value: direction }, { label: 'system_device', op: '!~', value: VIRTUAL_NICS }],
    [{ label: 'direction', op: '=', value: direction }, { label: 'device', op: '!~', value: VIRTUAL_NICS }],
  );

export const otelHostMapping = defineMapping({
  name: 'otel_host',
  version: 1,
  description: 'OpenTelemetry host metrics: non-idle CPU time, memory used, filesystem size, physical network bytes.',
  resource: { type: 'vm' },
  account_id: [{ from: 'target_label', name: 'cloud_account_id' }],
  resource_id: [
    { from: 'target_label', name: 'host_id' },
    { from: 'target_label', name: 'cloud_resource_id' },
  ],
  attributes: {
    instance_type: [{ from: 'target_label', name: 'host_type' }],
    zone: [{ from: 'target_label', name: 'cloud_availability_zone' }],
  },
  metrics: [
    {
      metric: 'cpu',
      kind: 'counter',
      terms: bothSpellings('system_cpu_time_seconds_total', [{ label: 'cpu_mode', op: '=~', value: CPU_MODES }], [{ label: 'state', op: '=~', value: CPU_MODES }]),
    },
    {
      metric: 'memory',
      kind: 'gauge',
      terms: bothSpellings('system_memory_usage_bytes', [{ label: 'system_memory_state', op: '=', value: 'used' }], [{ label: 'state', op: '=', value: 'used' }]),
    },
    {
      metric: 'storage',
      kind: 'gauge',
      terms: bothSpellings(
        'system_filesystem_usage_bytes',
        [{ label: 'system_filesystem_state', op: '=~', value: '.+' }, { label: 'system_filesystem_type', op: '!~', value: NOT_DISK_FSTYPES }],
        [{ label: 'state', op: '=~', value: '.+' }, { label: 'type', op: '!~', value: NOT_DISK_FSTYPES }],
        [
          ['system_device', 'system_filesystem_state'],
          ['device', 'state'],
        ],
      ),
    },
    { metric: 'bandwidth_in', kind: 'counter', terms: network('receive') },
    { metric: 'bandwidth_out', kind: 'counter', terms: network('transmit') },
  ],
});
