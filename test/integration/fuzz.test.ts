import { describe, expect, it } from 'vitest'
import { runFuzz } from '../../scripts/fuzz/harness.ts'

/*
 * The fuzz suite's bounded run (issue 12): property-based hostile input against every listener of a
 * real event in its own process, for 45 s. A longer run: `npx crowdmesh fuzz --minutes N`.
 */
describe('the fuzzer of our own protocols', () => {
  it('finds no crash, no unclear answer and no leak, while a participant and a recorder carry on', async () => {
    const report = await runFuzz({ durationMs: 45_000, seed: Number(process.env.CROWDMESH_FUZZ_SEED ?? 12) })
    const summary = JSON.stringify({ ...report, failures: report.failures.slice(0, 5) }, null, 1)
    expect(report.crashes, summary).toBe(0)
    expect(report.failures, summary).toEqual([])
    expect(report.leaks, summary).toEqual([])
    // Every kind of listener was reached.
    for (const target of [
      'http:signaling',
      'http:frames',
      'http:recordings',
      'http:dashboard',
      'http:dashboard-keyed',
      'http:console-keyed',
      'ws:signaling',
      'ws:signaling-server-peer',
      'ws:upload',
      'libp2p:work',
      'libp2p:admit',
      'libp2p:gossip',
    ])
      expect(report.casesByTarget[target] ?? 0, target).toBeGreaterThan(5)
    // Peers that lie (a fresh identity each, one batch in three): each caught and told, quarantined.
    expect(report.casesByTarget['libp2p:liar'] ?? 0, summary).toBeGreaterThan(0)
    expect(report.framesDuringFuzz).toBeGreaterThan(0)
    // The witness participant kept its link to the coordinator throughout (before the server peer
    // held its WebRTC keep-alive, the last recorder to leave cut every participant off).
    expect(report.witnessDisconnects.filter((line) => line.includes('"disconnected"'))).toEqual([])
    expect(report.witnessRecording).toEqual({ bytes: report.witnessRecording.bytes, identical: true })
  }, 240_000)
})
