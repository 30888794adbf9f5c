/**
 * One line per scenario: what was sent, acknowledged and billed, and which faults were
 * injected. Printed with console.log; also appended as JSON to $FAULTS_REPORT_FILE when set
 * (docs/faults.md quotes the figures of a run).
 */
import { appendFileSync } from 'node:fs';

export interface ScenarioReport {
  scenario: string;
  /** Sample items POSTed, retries and re-sends included. */
  sent: number;
  /** Items accepted in 202 answers (re-sends count again). */
  acknowledged: number;
  /** Distinct samples among the acknowledged ones. */
  distinctAcknowledged: number;
  /** Distinct samples billing counts. */
  billed: number;
  accounts: number;
  faults: string;
  seconds: number;
}

export function report(r: ScenarioReport): void {
  const line =
    `[faults] ${r.scenario}: sent ${r.sent}, acknowledged ${r.acknowledged} (${r.distinctAcknowledged} distinct), ` +
    `billed ${r.billed}, ${r.accounts} accounts exact; faults: ${r.faults}; ${r.seconds.toFixed(1)} s`;
  console.log(line);
  const file = process.env.FAULTS_REPORT_FILE;
  if (file) appendFileSync(file, JSON.stringify({ ...r, line }) + '\n');
}
