/**
 * The table bench/run.ts prints: each figure, quichex, each baseline and quichex's ratio to it, the
 * target. The @matrixai/quic columns appear only when some row has them.
 */
import type { Kind, Row } from './scenarios/scenario.js';

const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');

/** Prints `rows` as aligned columns on stdout. */
export function printTable(rows: Row[]): void {
  const matrixai = rows.some((r) => r.matrixai);
  const header = ['figure', 'quichex', 'node:dgram', 'quichex/dgram', 'native quiche', 'quichex/native'];
  if (matrixai) header.push('@matrixai/quic', 'quichex/matrixai');
  const lines = [
    [...header, 'target'],
    ...rows.map((row) => {
      const { figure, values, format, extra = {}, target = '' } = row;
      // A baseline that was never meant for this figure shows as '-'; one that was but failed or
      // could not run, as 'n/a'.
      const cell = (k: Kind) =>
        Number.isNaN(values[k]) && k !== 'quichex' && !(k === 'matrixai' && row.matrixai)
          ? '-'
          : format(values[k]) + (extra[k] ?? '');
      const line = [
        figure,
        cell('quichex'),
        cell('dgram'),
        ratio(values.quichex, values.dgram),
        cell('native'),
        ratio(values.quichex, values.native),
      ];
      if (matrixai) line.push(cell('matrixai'), row.matrixai ? ratio(values.quichex, values.matrixai) : '-');
      return [...line, target];
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
