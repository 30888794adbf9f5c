/**
 * From base totals to billed quantities, exactly: base totals are exact decimals from
 * ClickHouse; the division to billing units is done in decimal arithmetic (big.js) and
 * rounded half-to-even at a fixed scale, never through a float64.
 */
import BigImport from 'big.js';
import { METRIC_KINDS, METRICS, type Metric } from '../schemas/metrics.js';

/** Decimal places of a billed quantity: below a millionth of a cent at any sane price. */
export const QUANTITY_SCALE = 12;

const Big = BigImport();
Big.DP = QUANTITY_SCALE + 6; // headroom before the final rounding
Big.RM = Big.roundHalfEven;

interface UnitRule {
  baseUnit: string;
  unit: string;
  divisor: string;
}

/** Each kind's billing rule, from the catalogue (schemas/metrics.ts). */
export const UNITS: Readonly<Record<Metric, UnitRule>> = Object.fromEntries(
  METRICS.map((m) => [m, { baseUnit: METRIC_KINDS[m].baseUnit, unit: METRIC_KINDS[m].billingUnit, divisor: METRIC_KINDS[m].divisor }]),
) as Record<Metric, UnitRule>;

/** Hours in a billing month for GiB-month: the provider's convention (DESIGN.md). */
const HOURS_PER_MONTH = '730';

export interface Quantity {
  base_total: string;
  base_unit: string;
  quantity: string;
  unit: string;
  /** Kinds the catalogue bills monthly too (storage): GiB-hours / 730. */
  quantity_gib_month?: string;
}

export function toQuantity(metric: Metric, baseTotal: string): Quantity {
  const rule = UNITS[metric];
  const base = new Big(baseTotal);
  const quantity = base.div(rule.divisor);
  const q: Quantity = {
    base_total: canonicalDecimal(base),
    base_unit: rule.baseUnit,
    quantity: canonicalDecimal(quantity.round(QUANTITY_SCALE)),
    unit: rule.unit,
  };
  const monthly = METRIC_KINDS[metric].monthly;
  if (monthly) q[monthly.field] = canonicalDecimal(quantity.div(HOURS_PER_MONTH).round(QUANTITY_SCALE));
  return q;
}

/** Plain notation (never 1e-7), no trailing zeros. */
function canonicalDecimal(b: InstanceType<typeof Big>): string {
  const s = b.toFixed();
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}
