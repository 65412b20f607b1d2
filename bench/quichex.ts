/**
 * quichex as its users run it: the JavaScript that `npm run build` compiles into dist/ (`npm run
 * bench` builds it first). The workers themselves run through tsx, whose esbuild transform keeps
 * function names with an `Object.defineProperty` on every closure it creates: run through tsx
 * too, the library's hot paths would pay that on every write and every packet (about a tenth of
 * the CPU of an echo round trip), a cost the published package does not have.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as Quichex from '../lib/index.js';

const dist = new URL('../dist/index.js', import.meta.url);
if (!existsSync(dist)) throw new Error(`${fileURLToPath(dist)} is missing: run \`npm run build\` (npm run bench does)`);
const lib = (await import(dist.href)) as typeof Quichex;

export const { QuicServer, QuicTransport, generateCertificate } = lib;
export type QuicServer = Quichex.QuicServer;
export type QuicTransport = Quichex.QuicTransport;
export type { QuicReceiveStream } from '../lib/index.js';
