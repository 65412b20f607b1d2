/** The table bench/run.ts prints: each figure, quichex, each baseline and the ratio to it, the target. */
import type { Row } from './scenarios/scenario.js';

const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');

/** Prints `rows` as aligned columns on stdout. */
export function printTable(rows: Row[]): void {
  const lines = [
    ['figure', 'quichex', 'node:dgram', 'quichex/dgram', 'native quiche', 'quichex/native', 'target'],
    ...rows.map(({ figure, values, format, extra = {}, target = '' }) => {
      // A baseline that was never measured for this figure shows as '-', not 'n/a'.
      const cell = (k: 'quichex' | 'dgram' | 'native') =>
        Number.isNaN(values[k]) && k !== 'quichex' ? '-' : format(values[k]) + (extra[k] ?? '');
      return [
        figure,
        cell('quichex'),
        cell('dgram'),
        ratio(values.quichex, values.dgram),
        cell('native'),
        ratio(values.quichex, values.native),
        target,
      ];
    }),
  ];
  const widths = lines[0].map((_, c) => Math.max(...lines.map((r) => r[c].length)));
  for (const line of lines)
    console.log(
      line
        .map((cell, c) => cell.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    );
}
