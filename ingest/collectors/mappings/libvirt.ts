/**
 * prometheus-libvirt-exporter (github.com/inovex/prometheus-libvirt-exporter, the maintained
 * successor of the kumina and zhangjianweibj exporters) → one resource per VM domain on the
 * hypervisor the target points at.
 *
 * Identity comes from the domain's metadata, exported as the info series
 * `libvirt_domain_openstack_info{domain, instance_id, project_id, flavor_name, …} 1`:
 * account = the OpenStack project, resource = the instance UUID (the exporter fills
 * instance_id with the libvirt domain UUID even outside OpenStack). A domain without a
 * project is reported as unmapped, never billed to the hypervisor's owner by default.
 *
 * Decisions (bump `version` to change one):
 * - cpu: `libvirt_domain_info_cpu_time_seconds_total`, all vCPUs and emulator threads.
 * - memory: `libvirt_domain_info_memory_usage_bytes`, libvirt's current allocation of the
 *   domain (after ballooning), not the maximum it could grow to.
 * - storage: `libvirt_domain_block_stats_capacity_bytes`, the virtual size of every disk.
 *   The exporter only reports disks of running domains, so a stopped VM's disks are not
 *   billed from here; bill volumes from the storage system with a per-volume mapping.
 * - bandwidth: interface rx/tx bytes; libvirt reports tap devices from the guest's side,
 *   so rx is what the VM received (bandwidth_in).
 * - gauges count only while the domain is running, blocked, paused, shutting down or
 *   suspended to memory (libvirt states 1, 2, 3, 4, 7): a shut-off domain still exports its
 *   configured memory, but holds none.
 */
import { defineMapping } from './schema.js';

export const libvirtMapping = defineMapping({
  name: 'libvirt',
  version: 1,
  description: 'Per VM domain: CPU time, current memory, disk capacity, interface rx/tx bytes.',
  resource: {
    type: 'vm',
    key_label: 'domain',
    info_series: 'libvirt_domain_openstack_info',
    active_when: { series: 'libvirt_domain_info_state', values: [1, 2, 3, 4, 7] },
  },
  account_id: [{ from: 'info_label', name: 'project_id' }],
  resource_id: [{ from: 'info_label', name: 'instance_id' }],
  attributes: { instance_type: [{ from: 'info_label', name: 'flavor_name' }] },
  metrics: [
    { metric: 'cpu', kind: 'counter', terms: [{ series: 'libvirt_domain_info_cpu_time_seconds_total' }] },
    { metric: 'memory', kind: 'gauge', terms: [{ series: 'libvirt_domain_info_memory_usage_bytes' }] },
    { metric: 'storage', kind: 'gauge', terms: [{ series: 'libvirt_domain_block_stats_capacity_bytes' }] },
    { metric: 'bandwidth_in', kind: 'counter', terms: [{ series: 'libvirt_domain_interface_stats_receive_bytes_total' }] },
    { metric: 'bandwidth_out', kind: 'counter', terms: [{ series: 'libvirt_domain_interface_stats_transmit_bytes_total' }] },
  ],
});
