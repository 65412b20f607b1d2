/**
 * A process that used quichex and closed what it opened exits by itself: no socket, timer or
 * other handle is left behind. Each scenario runs in a child process (spec-tests/fixtures).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

const FIXTURE = fileURLToPath(new URL('../fixtures/clean-exit.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The child must be gone by then; a leaked handle would keep it alive indefinitely. */
const EXIT_WITHIN_MS = 10_000;

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  stdout: string;
  stderr: string;
  report: Record<string, unknown>;
}

/** Runs the fixture's `scenario`; kills it (and fails) if it has not exited in time. */
function runScenario(scenario: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, scenario], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `scenario ${scenario} did not exit within ${EXIT_WITHIN_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, EXIT_WITHIN_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      let report: Record<string, unknown> = {};
      try {
        report = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // Left empty: the assertions below show stdout and stderr.
      }
      resolve({ code, signal, ms: performance.now() - start, stdout, stderr, report });
    });
  });
}

function assertExitedCleanly(r: ChildResult): void {
  assert.equal(r.signal, null, `killed by ${r.signal}`);
  assert.equal(r.code, 0, `exit code ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stderr, '', 'nothing on stderr');
}

/** `outcome` (as the fixture reports it) is a rejection with a `QuicTransportError` of `code`. */
function assertRejected(outcome: unknown, code: string): void {
  const rejected = (outcome as { rejected?: { isQuicTransportError?: boolean; code?: string } } | undefined)?.rejected;
  assert.ok(rejected, `expected a rejection, got ${JSON.stringify(outcome)}`);
  assert.equal(rejected.isQuicTransportError, true);
  assert.equal(rejected.code, code);
}

describe('the process exits by itself', () => {
  test('after an echo, client.close() and await server.close()', async () => {
    const r = await runScenario('echo');
    assertExitedCleanly(r);
    assert.deepEqual(r.report, {
      scenario: 'echo',
      client: { fulfilled: { closeCode: 0, reason: 'bye' } },
      session: { fulfilled: { closeCode: 0, reason: 'bye' } },
    });
  });

  test('when the server closes first while the client is connected', async () => {
    const r = await runScenario('server-first');
    assertExitedCleanly(r);
    assert.deepEqual(r.report, {
      scenario: 'server-first',
      client: { fulfilled: { closeCode: 0, reason: 'server closing' } },
    });
  });

  test('after a client that failed to connect (nothing listening)', async () => {
    const r = await runScenario('refused');
    assertExitedCleanly(r);
    assertRejected(r.report.ready, 'ERR_QUIC_CONNECTION_REFUSED');
    assertRejected(r.report.closed, 'ERR_QUIC_CONNECTION_REFUSED');
  });

  test('after a client whose handshake timed out', async () => {
    const r = await runScenario('handshake-timeout');
    assertExitedCleanly(r);
    assertRejected(r.report.ready, 'ERR_QUIC_HANDSHAKE_TIMEOUT');
    assertRejected(r.report.closed, 'ERR_QUIC_HANDSHAKE_TIMEOUT');
  });

  test('after a client closed while it was still connecting', async () => {
    const r = await runScenario('close-while-connecting');
    assertExitedCleanly(r);
    assertRejected(r.report.ready, 'ERR_QUIC_SESSION_CLOSED');
    assertRejected(r.report.closed, 'ERR_QUIC_SESSION_CLOSED');
  });

  test('after a client closed by a quichex:session:open subscriber (no handshake timer left)', async () => {
    const r = await runScenario('close-on-open');
    assertExitedCleanly(r);
    assertRejected(r.report.closed, 'ERR_QUIC_SESSION_CLOSED');
    assert.ok(r.ms < 5000, `the process took ${Math.round(r.ms)} ms to exit`);
  });

  test('after server.close() called while listen() was still binding the socket', async () => {
    const r = await runScenario('close-while-listening');
    assertExitedCleanly(r);
    assert.deepEqual(r.report, {
      scenario: 'close-while-listening',
      listen: {}, // fulfilled with undefined, which JSON leaves out
      close: {},
      closeAgain: 'closed',
      accepted: null,
    });
  });

  test('after a client that closes the moment ready resolves (the server sees the session and the close)', async () => {
    const r = await runScenario('close-on-ready');
    assertExitedCleanly(r);
    assert.deepEqual(r.report, {
      scenario: 'close-on-ready',
      client: { fulfilled: { closeCode: 5, reason: 'bye' } },
      accepted: 'session',
      session: { fulfilled: { closeCode: 5, reason: 'bye' } },
    });
    assert.ok(r.ms < 5000, `the process took ${Math.round(r.ms)} ms to exit`);
  });
});
