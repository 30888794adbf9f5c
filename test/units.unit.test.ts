/** Base totals → billed quantities, in decimal arithmetic. */
import { describe, expect, it } from 'vitest';
import { toQuantity } from '../domain/units.js';

describe('billed quantities', () => {
  it('converts vCPU-seconds to vCPU-hours, rounding half to even at 12 places', () => {
    expect(toQuantity('cpu', '3600')).toMatchObject({ base_total: '3600', base_unit: 'vCPU-second', quantity: '1', unit: 'vCPU-hour' });
    expect(toQuantity('cpu', '1').quantity).toBe('0.000277777778');
    expect(toQuantity('cpu', '0.000001').quantity).toBe('0.000000000278');
    expect(toQuantity('cpu', '0.0018').quantity).toBe('0.0000005'); // exact, not 4.9999…e-7
  });

  it('converts byte-seconds to GiB-hours and GiB-months', () => {
    const gibHour = String(1024 ** 3 * 3600);
    expect(toQuantity('memory', gibHour)).toMatchObject({ quantity: '1', unit: 'GiB-hour' });
    const q = toQuantity('storage', String(1024 ** 3 * 3600 * 730));
    expect(q.quantity).toBe('730');
    expect(q.quantity_gib_month).toBe('1');
  });

  it('converts GPU-seconds to GPU-hours, exactly, with no monthly quantity', () => {
    expect(toQuantity('gpu', '3600')).toEqual({ base_total: '3600', base_unit: 'GPU-second', quantity: '1', unit: 'GPU-hour' });
    expect(toQuantity('gpu', '0.0018').quantity).toBe('0.0000005');
    expect(toQuantity('gpu', '28800.000001').quantity).toBe('8.000000000278');
    expect(toQuantity('gpu', '123456789012345678901234.5').quantity).toBe('34293552503429355250.342916666667');
  });

  it('converts bytes to decimal GB and keeps totals beyond 2^53 exact', () => {
    expect(toQuantity('bandwidth_in', '1500000000')).toMatchObject({ quantity: '1.5', unit: 'GB' });
    const huge = '123456789012345678901234.5';
    expect(toQuantity('bandwidth_out', huge)).toMatchObject({ base_total: huge, quantity: '123456789012345.6789012345' });
  });
});
